#if canImport(Glibc)
import Glibc
#endif

/// A plain POSIX thread for tests that need real concurrency with blocking clients
/// (Swift concurrency's pool is too small for blocking calls on two cores).
///
/// - Note: `@unchecked Sendable`: the handle is written once in `init` and read by `join`.
public final class TestThread: @unchecked Sendable {
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

    /// Waits for the thread to finish.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit { join() }
}
