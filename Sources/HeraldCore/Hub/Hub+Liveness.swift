/// Keepalives, idle sessions, expired tokens and history retention: what the Hub checks
/// once a second (`tick`).
extension Hub {
    /// Runs the once-a-second checks:
    /// - a WebSocket gets a ping every `delivery.pingSeconds`, and is closed with 1001 when
    ///   it sent nothing (not even a pong) for `delivery.idleTimeoutSeconds` although a ping
    ///   went out since (a late tick must not close a client it never asked);
    /// - an SSE stream gets a `: hb` comment every `delivery.heartbeatSeconds`;
    /// - a session whose JWT expired (`exp` + `SubscriberToken.leewaySeconds`) ends: a
    ///   WebSocket with the notice `token_expired` and close 4001 after what is queued
    ///   (unless it renewed the token with the `auth` op), an SSE stream at once;
    /// - history drops what its age limit no longer allows.
    /// - Complexity: O(sessions).
    public func tick() {
        // Presence changes the cluster's stream failed to store while it looked healthy
        // (an append cut off in doubt, an error reply) are retried once a second.
        if storageFailure == nil { announcePresenceAwaitingStorage() }
        let now = clock.now()
        let unixNow = clock.unixSeconds()
        let ping = UInt64(config.delivery.pingSeconds) * 1_000_000_000
        let idle = UInt64(config.delivery.idleTimeoutSeconds) * 1_000_000_000
        let heartbeat = UInt64(config.delivery.heartbeatSeconds) * 1_000_000_000
        for case let session? in sessions where session.closing == nil {
            if let expiresAt = session.credentials.expiresAt, unixNow > expiresAt + SubscriberToken.leewaySeconds {
                expire(session)
                continue
            }
            switch session.transport {
            case .webSocket:
                if now &- session.lastHeard > idle && session.lastKeepalive > session.lastHeard {
                    close(session, code: .goingAway, reason: "idle timeout", immediately: true)
                } else if now &- session.lastKeepalive >= ping {
                    keepalive(session, now: now)
                }
            case .sse:
                if now &- session.lastKeepalive >= heartbeat { keepalive(session, now: now) }
            }
        }
        log.expire(now: now)
    }

    private func keepalive(_ session: Session, now: UInt64) {
        session.lastKeepalive = now
        session.keepaliveDue = true
        wake(session)
    }

    private func expire(_ session: Session) {
        session.credentials = .anonymous
        switch session.transport {
        case .webSocket:
            close(
                session, code: .tokenExpired, reason: "token expired", immediately: false,
                notice: HeraldError(.tokenExpired, "the token expired; renew it with the auth op before it does"))
        case .sse:
            close(session, code: .tokenExpired, reason: "token expired", immediately: true)
        }
    }
}
