import Synchronization

/// Work for a loop from other threads, in the order it was posted.
///
/// Why it exists: a loop's state (its Hub, its connections) is touched by the loop thread
/// only, so nothing is locked on the hot path. Another thread — a log's writer after an
/// fsync, a broker's reader with events from other nodes, a signal handler's helper —
/// posts a message instead; the inbox wakes the loop (`wake`, which for libwebsockets is
/// `lws_cancel_service`), and the loop drains it on its own thread.
///
/// The lock is held only to append or to swap the array out; a loop is woken once per
/// batch (when a post finds the inbox empty), however many messages follow.
public final class Inbox<Message: Sendable>: Sendable {
    private let messages = Mutex<[Message]>([])
    private let wake: @Sendable () -> Void

    /// - Parameter wake: makes the loop call `drain()` soon; called from the posting thread.
    public init(wake: @escaping @Sendable () -> Void) {
        self.wake = wake
    }

    /// Queues a message for the loop. Safe from any thread.
    public func post(_ message: Message) {
        let wasEmpty = messages.withLock { queued in
            queued.append(message)
            return queued.count == 1
        }
        if wasEmpty { wake() }
    }

    /// Takes every waiting message, oldest first. Called on the loop thread when woken.
    public func drain() -> [Message] {
        messages.withLock { queued in
            var taken: [Message] = []
            swap(&taken, &queued)
            return taken
        }
    }
}

/// What other threads tell a loop's Hub.
public enum HubMessage: Sendable {
    /// The log made every event up to this position durable (`Hub.logged(through:)`).
    case logged(through: UInt64)
    /// Events read from the cluster's stream, in its order, and the epoch they count in
    /// (`Hub.receive(_:epoch:)`).
    case received([Event], epoch: StreamEpoch)
    /// The broker's answer to a submission (`Hub.sequenced(ticket:result:)`).
    case sequenced(ticket: UInt64, result: SequencingResult)
    /// The log cannot store events (`Hub.storageFailed(_:)`): for a file log for good,
    /// for the cluster's stream until `.storageRecovered`.
    case storageFailed(String)
    /// The cluster's stream can be reached again (`Hub.storageRecovered()`).
    case storageRecovered
}

extension Hub {
    /// Acts on a message from the loop's inbox.
    public func handle(_ message: HubMessage) {
        switch message {
        case .logged(let position): logged(through: position)
        case .received(let events, let epoch): receive(events, epoch: epoch)
        case .sequenced(let ticket, let result): sequenced(ticket: ticket, result: result)
        case .storageFailed(let reason): storageFailed(reason)
        case .storageRecovered: storageRecovered()
        }
    }
}
