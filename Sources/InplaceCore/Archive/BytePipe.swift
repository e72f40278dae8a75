import Foundation

/// A bounded, blocking byte queue between one writer thread (a curl transfer) and one reader
/// thread (libarchive). The writer blocks while `capacity` bytes wait, so memory stays bounded
/// whatever the size of the stream, and a slow disk slows the download instead of filling RAM.
final class BytePipe: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    // Guarded by `condition`.
    private var chunks: [UnsafeMutableRawBufferPointer] = []
    private var head = 0
    private var buffered = 0
    private var writerDone = false
    private var writerError: (any Error)?
    private var readerClosed = false
    private var readerWaiting = false
    private var writerWaiting = false

    /// The chunk the reader holds (valid until its next `read`).
    private var current: UnsafeMutableRawBufferPointer?

    struct ReaderClosed: Error {}

    init(capacity: Int = 8 << 20) {
        precondition(capacity > 0, "a byte pipe needs room for at least one byte")
        self.capacity = capacity
    }

    deinit {
        current?.deallocate()
        for chunk in chunks[head...] { chunk.deallocate() }
    }

    /// Copies `bytes` in; blocks while the pipe is full. Throws when the reader has gone.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        chunk.copyMemory(from: bytes)
        condition.lock()
        defer { condition.unlock() }
        while buffered >= capacity && !readerClosed {
            writerWaiting = true
            condition.wait()
        }
        writerWaiting = false
        if readerClosed {
            chunk.deallocate()
            throw ReaderClosed()
        }
        chunks.append(chunk)
        buffered += chunk.count
        // Wake the reader only when it sleeps: a signal per chunk costs a context switch.
        if readerWaiting { condition.signal() }
    }

    /// Ends the stream: normally (nil) or with the writer's error, which the reader then sees.
    func finish(error: (any Error)?) {
        condition.lock()
        writerDone = true
        writerError = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk (valid until the next call), an empty buffer at the end, or the writer's error.
    func read() throws -> UnsafeRawBufferPointer {
        current?.deallocate()
        current = nil
        condition.lock()
        defer { condition.unlock() }
        while head == chunks.count && !writerDone {
            readerWaiting = true
            condition.wait()
        }
        readerWaiting = false
        if head < chunks.count {
            let chunk = chunks[head]
            head += 1
            if head > 64 && head * 2 > chunks.count {
                chunks.removeFirst(head)
                head = 0
            }
            buffered -= chunk.count
            if writerWaiting && buffered < capacity { condition.signal() }
            current = chunk
            return UnsafeRawBufferPointer(chunk)
        }
        if let writerError { throw writerError }
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// The reader stops early (an error, or a refusal): the writer's next write throws.
    func closeReader() {
        condition.lock()
        readerClosed = true
        condition.broadcast()
        condition.unlock()
    }
}
