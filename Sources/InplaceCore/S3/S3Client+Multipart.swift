import Foundation

extension S3Client {
    /// Uploads `path` in parts: create the upload, send the parts (`partConcurrency` at once, each
    /// retried on its own), complete it; abort it on any failure so no orphaned parts are billed.
    func putMultipart(_ key: String, file path: String, size: Int64) async throws(S3Error) {
        let partSize = max(config.partSize, (size + 9_999) / 10_000, 5 << 20)
        let partCount = Int((size + partSize - 1) / partSize)
        let created = try await send(method: "POST", key: key, query: [("uploads", "")])
        guard let uploadID = S3XMLElement.parse(created.body)?.value("UploadId"), !uploadID.isEmpty else {
            throw S3Error(kind: .badResponse, code: "BadResponse", message: "CreateMultipartUpload gave no UploadId",
                          bucket: config.bucket, key: key)
        }
        do throws(S3Error) {
            let etags = try await uploadParts(key, file: path, size: size, partSize: partSize, partCount: partCount,
                                              uploadID: uploadID)
            var xml = "<CompleteMultipartUpload>"
            for (index, etag) in etags.enumerated() {
                xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\"\(xmlEscape(etag))\"</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let completed = try await send(method: "POST", key: key, query: [("uploadId", uploadID)],
                                           headers: [HTTPHeader("Content-Type", "application/xml")],
                                           body: .bytes(Array(xml.utf8)))
            // CompleteMultipartUpload can answer 200 with an error in the body.
            if let root = S3XMLElement.parse(completed.body), root.name == "Error" {
                throw S3Error(kind: .serverError, code: root.value("Code") ?? "InternalError",
                              message: root.value("Message") ?? "", bucket: config.bucket, key: key, httpStatus: 200)
            }
        } catch {
            // In a task of its own, so that it runs even when this task was cancelled.
            _ = await Task { try? await self.send(method: "DELETE", key: key, query: [("uploadId", uploadID)]) }.value
            throw error
        }
    }

    private func uploadParts(
        _ key: String, file path: String, size: Int64, partSize: Int64, partCount: Int, uploadID: String
    ) async throws(S3Error) -> [String] {
        do {
            return try await concurrentMap(Array(0..<partCount), width: config.partConcurrency) { index in
                let offset = Int64(index) * partSize
                let response = try await self.send(
                    method: "PUT", key: key, query: [("partNumber", String(index + 1)), ("uploadId", uploadID)],
                    body: .file(path: path, offset: offset, length: min(partSize, size - offset)))
                return unquote(response.header("ETag") ?? "")
            }
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error(kind: .cancelled, code: "Cancelled", message: "\(error)", bucket: config.bucket, key: key)
        }
    }
}
