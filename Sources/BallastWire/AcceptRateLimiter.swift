import NIOCore

/// Bounds how fast a listening channel accepts connections: a token bucket of `burst` tokens
/// refilled at `perSecond`. With no token left the next `read` (accept) is held back until one is
/// available; new connections wait in the kernel's accept backlog meanwhile (bounded by the
/// listen backlog; beyond it the kernel drops SYNs and clients retry). Established connections
/// never wait on it: a client that reconnects in a tight loop can only cost the node
/// `perSecond` × (the work of one connection).
final class AcceptRateLimiter: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Never

    let perSecond: Double
    let burst: Double
    private var tokens: Double
    private var refilledAt = NIODeadline.now()
    private var heldRead: Scheduled<Void>?
    /// Accepts that had to wait for a token (for tests and logs).
    private(set) var deferredReads = 0

    init(perSecond: Int, burst: Int) {
        precondition(perSecond > 0 && burst > 0, "an accept rate limit needs a positive rate and burst")
        self.perSecond = Double(perSecond)
        self.burst = Double(burst)
        tokens = Double(burst)
    }

    /// One accepted connection spends one token.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        refill()
        tokens -= 1
        context.fireChannelRead(data)
    }

    /// Accepts more only with a token in hand; otherwise reads again when one is due.
    func read(context: ChannelHandlerContext) {
        guard heldRead == nil else { return }
        refill()
        if tokens >= 1 {
            context.read()
            return
        }
        deferredReads += 1
        let wait = TimeAmount.nanoseconds(Int64((1 - tokens) / perSecond * 1e9) + 1)
        heldRead = context.eventLoop.assumeIsolated().scheduleTask(in: wait) {
            self.heldRead = nil
            self.read(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        heldRead?.cancel()
        heldRead = nil
    }

    private func refill() {
        let now = NIODeadline.now()
        let elapsed = Double((now - refilledAt).nanoseconds) / 1e9
        refilledAt = now
        tokens = min(burst, tokens + elapsed * perSecond)
    }
}
