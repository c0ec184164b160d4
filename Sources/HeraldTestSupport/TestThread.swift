public import HeraldClient

/// A plain POSIX thread for tests that need real concurrency with blocking clients.
public typealias TestThread = PosixThread
