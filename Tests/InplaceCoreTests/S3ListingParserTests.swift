import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import InplaceCore

@Suite("ListObjectsV2 answers read from their bytes, as Foundation's XMLParser reads them")
struct S3ListingParserTests {
    /// An answer as AWS writes it (namespace, Owner, StorageClass, quoted ETags), with keys that
    /// need escaping: `&`, `<`, `>`, quotes, spaces, percent signs, raw UTF-8 and character references.
    static let awsListing = """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>b/</Prefix>\
        <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><KeyCount>4</KeyCount>\
        <MaxKeys>4</MaxKeys><IsTruncated>true</IsTruncated>
          <Contents>
            <Key>b/shadow/my%2Ddb/t/default_all_1_1_0.tar</Key>
            <LastModified>2026-12-03T09:00:00.000Z</LastModified>
            <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>
            <Size>1048576</Size>
            <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>x</DisplayName></Owner>
            <StorageClass>STANDARD</StorageClass>
          </Contents>
          <Contents><Key>b/a b/&amp; &lt;x&gt; &quot;q&quot; &apos;s&apos; 100%/ü€😀</Key><LastModified>2026-12-03T09:00:01.5+01:00</LastModified>\
        <ETag>"abc-4"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
          <Contents><Key>b/&#233;&#x20AC;&#x1F600;&#38;</Key><Size>7</Size><ETag>"e"</ETag><LastModified>2026-12-03T09:00:02Z</LastModified></Contents>
          <Contents><Key><![CDATA[b/cdata <&> key]]></Key><Size>9</Size><ETag>"f"</ETag><LastModified>2026-12-03T09:00:03Z</LastModified></Contents>
          <CommonPrefixes><Prefix>b/shadow/</Prefix></CommonPrefixes>
          <CommonPrefixes><Prefix>b/x &amp; y/</Prefix></CommonPrefixes>
        </ListBucketResult>
        """

    /// The same fields read through Foundation's XMLParser, as the listing was read before.
    static func reference(_ text: String) throws -> S3ListingParser.Answer {
        final class Reader: NSObject, XMLParserDelegate {
            var path: [String] = []
            var text = ""
            var answer = S3ListingParser.Answer(page: S3Client.ListPage(objects: [], commonPrefixes: []), isTruncated: false)
            var object = S3ObjectInfo(key: "", size: 0, etag: "", lastModified: nil)
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                path.append(name)
                text = ""
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
            func parser(_ parser: XMLParser, foundCDATA data: Data) { text += String(decoding: data, as: UTF8.self) }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                switch path.suffix(2).joined(separator: "/") {
                case "Contents/Key": object.key = text
                case "Contents/Size": object.size = Int64(text) ?? -1
                case "Contents/ETag": object.etag = unquote(text)
                case "Contents/LastModified": object.lastModified = parseDate(text)
                case "CommonPrefixes/Prefix": answer.page.commonPrefixes.append(text)
                case "ListBucketResult/IsTruncated": answer.isTruncated = text == "true"
                case "ListBucketResult/NextContinuationToken": answer.nextContinuationToken = text
                case "ListBucketResult/Contents":
                    answer.page.objects.append(object)
                    object = S3ObjectInfo(key: "", size: 0, etag: "", lastModified: nil)
                default: break
                }
                path.removeLast()
            }
        }
        let reader = Reader()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = reader
        guard parser.parse() else { throw S3XMLScanner.Malformed() }
        return reader.answer
    }

    @Test("an AWS answer with odd keys: every field equals Foundation's reading")
    func awsAnswerMatchesFoundation() throws {
        let answer = try #require(S3ListingParser.parse(Array(Self.awsListing.utf8)))
        let expected = try Self.reference(Self.awsListing)
        #expect(answer.page.objects == expected.page.objects)
        #expect(answer.page.commonPrefixes == expected.page.commonPrefixes)
        #expect(answer.isTruncated && expected.isTruncated)
        #expect(answer.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(answer.page.objects.map(\.key) == [
            "b/shadow/my%2Ddb/t/default_all_1_1_0.tar", "b/a b/& <x> \"q\" 's' 100%/ü€😀", "b/é€😀&", "b/cdata <&> key",
        ])
        #expect(answer.page.objects.map(\.size) == [1_048_576, 0, 7, 9])
        #expect(answer.page.objects.map(\.etag) == ["d41d8cd98f00b204e9800998ecf8427e", "abc-4", "e", "f"])
        #expect(answer.page.objects[0].lastModified == Date(timeIntervalSince1970: 1_796_288_400))
        #expect(answer.page.objects[1].lastModified == Date(timeIntervalSince1970: 1_796_288_401.5 - 3600))
        #expect(answer.page.commonPrefixes == ["b/shadow/", "b/x & y/"])
    }

    @Test("the last page: no token, not truncated, and an empty listing")
    func lastAndEmptyPages() throws {
        let last = try #require(S3ListingParser.parse(Array("""
            <ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>
            """.utf8)))
        #expect(!last.isTruncated && last.nextContinuationToken == nil)
        #expect(last.page.objects == [S3ObjectInfo(key: "k", size: 1, etag: "", lastModified: nil)])
        let empty = try #require(S3ListingParser.parse(Array("<ListBucketResult><KeyCount>0</KeyCount><IsTruncated/></ListBucketResult>".utf8)))
        #expect(empty.page.objects.isEmpty && empty.page.commonPrefixes.isEmpty && !empty.isTruncated)
    }

    @Test("malformed or foreign answers are refused", arguments: [
        "", "not xml", "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key>k</Key></Contents>",
        "<ListBucketResult><Contents><Key>k</Contents></Key></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a &nbsp; b</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a &amp b</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult></ListBucketResult>junk", "<ListBucketResult/><ListBucketResult/>",
        "<ListBucketResult><Contents><Key>k</Key></Contents", "<ListBucketResult><![CDATA[x]]",
    ])
    func refusesMalformed(_ text: String) {
        #expect(S3ListingParser.parse(Array(text.utf8)) == nil, "\(text)")
    }

    @Test("error and multipart answers still read as element trees: attributes, comments, self-closing tags")
    func elementTree() throws {
        let root = try #require(S3XMLElement.parse(Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <Error a="1 > 0" b='/'><Code>NoSuchKey</Code><Message>The key &quot;a&amp;b&quot; does not exist</Message>\
            <Empty/><RequestId>r-1</RequestId></Error>
            """.utf8)))
        #expect(root.name == "Error")
        #expect(root.value("Code") == "NoSuchKey")
        #expect(root.value("Message") == "The key \"a&b\" does not exist")
        #expect(root.value("Empty") == "")
        #expect(root.value("RequestId") == "r-1")
        #expect(root.children.map(\.name) == ["Code", "Message", "Empty", "RequestId"])
        #expect(S3XMLElement.parse(Array("<Error><Code>x</Error>".utf8)) == nil)
    }
}

@Suite("The shadow index, built from listed keys over their bytes")
struct ShadowIndexBuilderTests {
    @Test("archives, part folders of the directory format, and keys out of order or outside a table's folder")
    func buildsIndex() {
        let prefix = "p/b/shadow/"
        var builder = ShadowIndexBuilder(prefixLength: prefix.utf8.count)
        for rest in [
            "db/t1/default_all_1_1_0.tar", "db/t1/default_all_2_2_0.tar", "db/t1/default/all_3_3_0/checksums.txt",
            "db/t1/default/all_3_3_0/data.bin", "db/t%2Eü/default_1.tar.zst", "db/t1/default_all_4_4_0.tar",
            "db/only-table", "db", "db/t2/", "d%26b/t&x/s3_all_1_1_0.tar",
        ] {
            builder.add(prefix + rest)
        }
        builder.add("p/b/shado")
        let index = builder.finish()
        #expect(index == [
            "db/t1": ["default_all_1_1_0.tar", "default_all_2_2_0.tar", "default/all_3_3_0/", "default_all_4_4_0.tar"],
            "db/t%2Eü": ["default_1.tar.zst"],
            "db/t2": [""],
            "d%26b/t&x": ["s3_all_1_1_0.tar"],
        ])
    }
}
