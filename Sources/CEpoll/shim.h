// epoll(7), which Swift's Glibc module does not bring in: the load tool's event loop.
#ifndef HERALD_CEPOLL_SHIM_H
#define HERALD_CEPOLL_SHIM_H
#include <sys/epoll.h>
#endif
