import Foundation

extension S3Client {
    /// Streams the archive at `key` and extracts it while it downloads: no temporary archive on
    /// disk, and memory bounded by the pipe's capacity whatever the archive's size.
    ///
    /// 1. A blocking-pool thread runs libarchive, pulling bytes from a `BytePipe`.
    /// 2. The GET's chunks are pushed into the pipe (a full pipe blocks the transfer: the network
    ///    slows to the speed of the disk). A retried GET resumes where it stopped.
    /// 3. The extraction's verdict wins: a refusal stops the download; a download failure shows
    ///    as the extraction's error, naming the cause.
    public func extractArchive(
        _ key: String, with extractor: ArchiveExtractor, into target: String, pipeCapacity: Int = 8 << 20
    ) async throws -> ArchiveExtractor.Result {
        let pipe = BytePipe(capacity: pipeCapacity)
        async let extraction = BlockingThreadPool.shared.run { try extractor.extract(pipe: pipe, into: target) }
        do {
            try await get(key, to: .handler { chunk in try pipe.write(chunk) })
            pipe.finish(error: nil)
        } catch {
            pipe.finish(error: error)
        }
        // When the archive ended before the stream (trailing padding), the reader closed the pipe
        // and the GET "failed": the extraction's success is what counts.
        return try await extraction
    }
}
