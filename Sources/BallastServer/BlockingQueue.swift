#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A multi-producer queue whose consumer thread blocks until items arrive and then takes all
/// of them at once: the batching point of the Raft shell (many proposals → one core turn).
/// Bounded by `capacity` items; `push` blocks the producer while the queue is full (back-pressure).
final class BlockingQueue<Element>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var notEmpty = pthread_cond_t()
    private var notFull = pthread_cond_t()
    private var items: [Element] = []
    private var closed = false
    private let capacity: Int

    /// Creates a queue holding at most `capacity` items.
    init(capacity: Int) {
        precondition(capacity > 0, "queue capacity must be positive")
        self.capacity = capacity
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&notEmpty, nil)
        pthread_cond_init(&notFull, nil)
    }

    deinit {
        pthread_cond_destroy(&notFull)
        pthread_cond_destroy(&notEmpty)
        pthread_mutex_destroy(&mutex)
    }

    /// Adds an item, waiting while the queue is full unless `waitForRoom` is false (for the
    /// consumer's own thread and for notifications the consumer needs in order to make room,
    /// which must never wait on it). Returns false once the queue is closed.
    @discardableResult
    func push(_ item: Element, waitForRoom: Bool = true) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while waitForRoom && items.count >= capacity && !closed { pthread_cond_wait(&notFull, &mutex) }
        if closed { return false }
        items.append(item)
        if items.count == 1 { pthread_cond_signal(&notEmpty) }
        return true
    }

    /// Waits for at least one item and takes every queued item; returns nil once closed and drained.
    func popAll() -> [Element]? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while items.isEmpty && !closed { pthread_cond_wait(&notEmpty, &mutex) }
        if items.isEmpty { return nil }
        let taken = items
        items.removeAll(keepingCapacity: true)
        pthread_cond_broadcast(&notFull)
        return taken
    }

    /// Wakes every waiter; later pushes fail and `popAll` returns what is left, then nil.
    func close() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&notEmpty)
        pthread_cond_broadcast(&notFull)
        pthread_mutex_unlock(&mutex)
    }
}

/// Starts `body` on a new POSIX thread (shells own their loops; cores never see threads).
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed for \(name): \(rc)")
    pthread_detach(thread)
}
