#if canImport(Glibc)
import Glibc
#endif

/// A plain POSIX thread, for code that blocks on sockets or epoll (Swift concurrency's
/// pool is too small for blocking calls on two cores): the load tool's readers and
/// publisher, and tests that need real concurrency with blocking clients.
///
/// - Note: `@unchecked Sendable`: the handle is written once in `init` and read by `join`.
public final class PosixThread: @unchecked Sendable {
    private var handle = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread at once.
    public init(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(
            &handle, nil,
            { argument in
                Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed")
    }

    /// Waits for the thread to finish (once; later calls return at once).
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit { join() }
}
