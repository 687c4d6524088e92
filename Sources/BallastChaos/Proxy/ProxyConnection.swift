import NIOCore

/// One proxied connection: the channel accepted from the dialling side (`downstream`) and the one
/// the proxy opened to the target (`upstream`). Bytes read on one side go through the other
/// side's delay line. Lives on the proxy's event loop (hence `@unchecked Sendable`).
final class ProxyConnection: @unchecked Sendable {
    unowned let proxy: FaultProxy
    let downstream: ProxyHalf
    let upstream: ProxyHalf
    /// Blackholed by a cut: nothing is read or written until the connection is closed.
    private(set) var stalled = false
    private var closing = false

    init(proxy: FaultProxy) {
        self.proxy = proxy
        downstream = ProxyHalf()
        upstream = ProxyHalf()
        downstream.connection = self
        upstream.connection = self
    }

    private func other(_ half: ProxyHalf) -> ProxyHalf { half === downstream ? upstream : downstream }

    /// Whether `source` may read now: not blackholed, the other side connected, writable and with
    /// room in its delay line (the back-pressure that bounds memory).
    func mayRead(_ source: ProxyHalf) -> Bool {
        guard !stalled, !closing else { return false }
        let sink = other(source)
        return sink.isActive && sink.isWritable && sink.lineBytes < proxy.maxBufferedBytes
    }

    /// Bytes read on `source`: dropped (resetting the connection) or queued toward the other side.
    func received(_ buffer: ByteBuffer, on source: ProxyHalf) {
        guard !stalled, !closing else { return }  // a read already under way when the cut began
        if proxy.drawDrop() {
            proxy.statistics.resets += 1
            close()
            return
        }
        let sink = other(source)
        sink.enqueue(buffer, due: .now() + TimeAmount.nanoseconds(proxy.faults.latency.nanoseconds))
        proxy.statistics.peakBufferedBytes = max(proxy.statistics.peakBufferedBytes, sink.lineBytes)
    }

    /// `sink` wrote some of its delay line, or can take more: the side feeding it may read again.
    func drained(_ sink: ProxyHalf) {
        other(sink).readIfDeferred()
    }

    /// `half` connected (the downstream side waits for the upstream one before it reads).
    func became(active half: ProxyHalf) {
        other(half).readIfDeferred()
    }

    /// One side closed: the other gets what is already in its delay line, then closes.
    func closed(_ half: ProxyHalf) {
        let peer = other(half)
        if stalled || closing || peer.lineBytes == 0 {
            close()
        } else {
            peer.closeWhenDrained()
        }
        if !downstream.isOpen && !upstream.isOpen { proxy.forget(self) }
    }

    /// Blackholes the connection: pending reads stay pending, nothing more is written.
    func stall() {
        stalled = true
    }

    /// Closes both sides now, discarding whatever is buffered.
    func close() {
        guard !closing else { return }
        closing = true
        downstream.closeNow()
        upstream.closeNow()
        if !downstream.isOpen && !upstream.isOpen { proxy.forget(self) }
    }

    var isStalled: Bool { stalled }
    var isClosing: Bool { closing }
}

/// The handler on one channel of a proxied connection: reads feed the connection; the delay line
/// holds bytes to write on this channel, each with the time it may leave.
final class ProxyHalf: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var connection: ProxyConnection?
    private var context: ChannelHandlerContext?
    private(set) var isActive = false
    /// Whether the channel exists and has not closed yet.
    private(set) var isOpen = true
    private var readDeferred = false
    private var line = CircularBuffer<(buffer: ByteBuffer, due: NIODeadline)>()
    private(set) var lineBytes = 0
    private var lastDue = NIODeadline.uptimeNanoseconds(0)
    private var wakeUp: Scheduled<Void>?
    private var closeAfterDrain = false

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard let connection, !connection.isClosing else {
            context.close(promise: nil)  // closed while this side was still connecting
            return
        }
        if context.channel.isActive { markActive() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        markActive()
        context.fireChannelActive()
    }

    private func markActive() {
        guard !isActive else { return }
        isActive = true
        connection?.became(active: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        isActive = false
        wakeUp?.cancel()
        connection?.closed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection?.received(unwrapInboundIn(data), on: self)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        drain()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Reads only while the connection allows it; otherwise remembers the read for later.
    func read(context: ChannelHandlerContext) {
        if connection?.mayRead(self) ?? false {
            context.read()
        } else {
            readDeferred = true
        }
    }

    func readIfDeferred() {
        guard readDeferred, let context, let connection, connection.mayRead(self) else { return }
        readDeferred = false
        context.read()
    }

    /// Queues `buffer` to leave at `due` (or later: never before a chunk queued earlier).
    func enqueue(_ buffer: ByteBuffer, due: NIODeadline) {
        let leave = max(due, lastDue)
        lastDue = leave
        line.append((buffer, leave))
        lineBytes += buffer.readableBytes
        drain()
    }

    /// Writes every chunk that is due while the channel is writable; schedules the next one.
    func drain() {
        guard let context, isActive, let connection, !connection.isStalled, !connection.isClosing else { return }
        let now = NIODeadline.now()
        var wrote = 0
        while let head = line.first, head.due <= now, context.channel.isWritable {
            line.removeFirst()
            lineBytes -= head.buffer.readableBytes
            wrote += head.buffer.readableBytes
            context.write(wrapOutboundOut(head.buffer), promise: nil)
        }
        if wrote > 0 {
            context.flush()
            connection.proxy.statistics.forwardedBytes += wrote
        }
        if let head = line.first, head.due > now, wakeUp == nil {
            wakeUp = context.eventLoop.scheduleTask(deadline: head.due) { [self] in
                wakeUp = nil
                drain()
            }
        }
        if line.isEmpty && closeAfterDrain {
            context.close(promise: nil)
            return
        }
        // Room again (bytes left, or the channel turned writable with the line already empty):
        // the side feeding this one may read. Without the second case a line that emptied just
        // before the channel stopped being writable left the other side's read deferred for good.
        if wrote > 0 || context.channel.isWritable { connection.drained(self) }
    }

    /// Closes once the delay line is empty (the other side closed normally).
    func closeWhenDrained() {
        closeAfterDrain = true
        drain()
    }

    /// Closes at once, dropping the delay line.
    func closeNow() {
        wakeUp?.cancel()
        wakeUp = nil
        line.removeAll()
        lineBytes = 0
        guard isOpen else { return }
        if let context {
            context.close(promise: nil)
        } else {
            isOpen = false  // never connected (the target refused, or the connection was blackholed)
        }
    }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
