import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// Static files from `publicDirectory` (the demo, the dashboard, herald.js): what the
/// router falls back to for GET and HEAD outside `/v1`.
struct StaticFilesEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        gateway.planStaticFile(request.head.path)
    }
}

extension Gateway {
    /// A file below the public directory with its MIME type, a redirect for a directory,
    /// or a 404. Symbolic links are followed only while they stay inside the directory.
    func planStaticFile(_ path: String) -> RequestPlan {
        let notFound = RequestPlan.respond(errorResponse(HeraldError(.notFound, "no such file: \(path)")))
        guard let root = publicRoot else { return notFound }
        var relative = path
        if relative.hasSuffix("/") { relative += "index.html" }
        guard !relative.split(separator: "/").contains(where: { $0 == ".." || $0.hasPrefix(".") }) else { return notFound }
        guard let resolved = Self.realPath(root + relative), resolved.hasPrefix(root + "/") else { return notFound }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return notFound }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            // Never "//host/": a doubled slash would make the redirect leave this origin.
            var location = Array("/".utf8)
            for byte in path.utf8 where byte > 0x20 && byte < 0x7F && !(byte == UInt8(ascii: "/") && location.last == byte) {
                location.append(byte)
            }
            return .respond(
                HTTPServerResponse(status: 301, contentType: nil, fields: [("location", String(decoding: location, as: UTF8.self) + "/")]))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG, let sender = FileSender(path: resolved, size: Int(info.st_size)) else { return notFound }
        var response = HTTPServerResponse(status: 200, contentType: MIMEType.forPath(relative), fields: [("cache-control", "no-cache")])
        response.separateBodyLength = Int(info.st_size)
        return .file(sender, response)
    }

    /// The canonical absolute path (symbolic links resolved), or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// A file sent in pieces as the socket drains, so a large file never sits in memory whole.
/// The descriptor closes when the sender is released (also when the client leaves early).
final class FileSender {
    private let descriptor: Int32
    private var remaining: Int

    init?(path: String, size: Int) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        remaining = size
    }

    deinit { close(descriptor) }

    var isFinished: Bool { remaining == 0 }

    /// Reads the next piece into `output`, up to `budget` bytes queued there.
    /// - Returns: false when the file could not be read (the connection must close).
    func fill(_ output: WriteBuffer, upTo budget: Int) -> Bool {
        while remaining > 0 && output.count < budget {
            let want = min(remaining, budget - output.count)
            let got = output.appendWriting(upTo: want) { read(descriptor, $0.baseAddress, want) }
            guard got > 0 else { return false }
            remaining -= got
        }
        return true
    }
}

/// Content types of the static files Herald serves.
enum MIMEType {
    static func forPath(_ path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json", "map": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "webp": return "image/webp"
        case "woff2": return "font/woff2"
        case "woff": return "font/woff"
        case "txt", "md": return "text/plain; charset=utf-8"
        case "yaml", "yml": return "application/yaml"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}
