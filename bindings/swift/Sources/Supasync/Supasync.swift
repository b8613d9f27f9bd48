// supasync for Swift: async throws functions, AsyncThrowingStreams for live queries
// and statuses, rows as [String: Any], one SupaSyncError with the CLI's kinds. A thin
// layer over the generated uniffi code (module SupasyncFFI); nothing of sync is here.
import Foundation
import SupasyncFFI

public typealias Row = [String: Any]

/// Every failure: `kind` (invalid, store, key, server, auth, not_found, timeout, closed,
/// config) and a detail saying why.
public struct SupaSyncError: Error, CustomStringConvertible {
    public let kind: String
    public let detail: String
    public var description: String { "\(kind): \(detail)" }
}

func ffi<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let SupasyncFFI.SupaSyncError.Failed(kind, detail) {
        throw SupaSyncError(kind: kind, detail: detail)
    }
}

func json(_ value: Any?) throws -> String {
    guard let value else { return "null" }
    guard JSONSerialization.isValidJSONObject([value]) else {
        throw SupaSyncError(kind: "invalid", detail: "not representable as JSON: \(value)")
    }
    let data = try JSONSerialization.data(withJSONObject: [value])
    let text = String(decoding: data, as: UTF8.self)
    return String(text.dropFirst().dropLast())
}

func parse(_ text: String) -> Any {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? NSNull()
}

func row(_ text: String) -> Row { parse(text) as? Row ?? [:] }
func rows(_ text: String) -> [Row] { parse(text) as? [Row] ?? [] }

func query(_ where_: Row?, _ order: String?, _ limit: Int?) throws -> String {
    var q: Row = [:]
    if let where_ { q["where"] = where_ }
    if let order { q["order"] = order }
    if let limit { q["limit"] = limit }
    return try json(q)
}

/// Open the replica of the user signed in on this device; `path` is the replica
/// directory (the CLI's layout), nil for one in memory; `schema` is the CLI's JSON.
/// With `encryptionKey` (32 bytes, kept in the Keychain) every user's store in `path`
/// is encrypted at rest; plaintext stores there are encrypted as they open, pending
/// writes kept. A key that does not open them throws kind `key`.
public func openReplica(url: String, anonKey: String, schema: String, path: String? = nil, encryptionKey: Data? = nil) async throws -> Replica {
    guard let encryptionKey else {
        return Replica(try await ffi { try await SupasyncFFI.openReplica(url: url, anonKey: anonKey, schemaJson: schema, path: path) })
    }
    guard let path else {
        throw SupaSyncError(kind: "invalid", detail: "an encryption key needs a replica directory (path): a replica in memory is never on disk")
    }
    return Replica(try await ffi {
        try await SupasyncFFI.openEncryptedReplica(url: url, anonKey: anonKey, schemaJson: schema, path: path, encryptionKey: encryptionKey)
    })
}

/// Encrypt the closed replica in `path` with `newKey` (every user's store), from
/// `oldKey` (nil: it is plaintext). Pending writes stay pending. Run it again with the
/// same keys if it stopped half way.
public func rekeyReplica(path: String, oldKey: Data?, newKey: Data) throws {
    do {
        try SupasyncFFI.rekeyReplica(path: path, oldKey: oldKey, newKey: newKey)
    } catch let SupasyncFFI.SupaSyncError.Failed(kind, detail) {
        throw SupaSyncError(kind: kind, detail: detail)
    }
}

final class RowsBridge: RowsListener, @unchecked Sendable {
    let cont: AsyncThrowingStream<[Row], Error>.Continuation
    init(_ c: AsyncThrowingStream<[Row], Error>.Continuation) { cont = c }
    func onRows(rowsJson: String) { cont.yield(rows(rowsJson)) }
    func onError(kind: String, message: String) { cont.finish(throwing: SupaSyncError(kind: kind, detail: message)) }
    func onEnd() { cont.finish() }
}

/// A live select's answers (`{"data", "count", "sync"}`), one object each.
final class AnswerBridge: RowsListener, @unchecked Sendable {
    let cont: AsyncThrowingStream<Row, Error>.Continuation
    init(_ c: AsyncThrowingStream<Row, Error>.Continuation) { cont = c }
    func onRows(rowsJson: String) { cont.yield(row(rowsJson)) }
    func onError(kind: String, message: String) { cont.finish(throwing: SupaSyncError(kind: kind, detail: message)) }
    func onEnd() { cont.finish() }
}

func selectOptions(count: Bool, single: Bool, maybeSingle: Bool) throws -> String {
    try json(["count": count, "cardinality": single ? "one" : maybeSingle ? "maybe_one" : "many"])
}

final class StatusBridge: StatusListener, @unchecked Sendable {
    let cont: AsyncStream<Row>.Continuation
    init(_ c: AsyncStream<Row>.Continuation) { cont = c }
    func onStatus(statusJson: String) { cont.yield(row(statusJson)) }
    func onEnd() { cont.finish() }
}

final class ChannelBridge: ChannelListener, @unchecked Sendable {
    let handler: (Row) -> Void
    init(_ h: @escaping (Row) -> Void) { handler = h }
    func onEvent(eventJson: String) { handler(row(eventJson)) }
}

/// One user's replica on this device. Live sync runs while someone is signed in.
public final class Replica: @unchecked Sendable {
    let inner: FfiReplica
    init(_ inner: FfiReplica) { self.inner = inner }

    public func signUp(email: String, password: String) async throws -> Row { row(try await ffi { try await inner.signUp(email: email, password: password) }) }
    public func signIn(email: String, password: String) async throws -> Row { row(try await ffi { try await inner.signIn(email: email, password: password) }) }
    public func signOut(wipe: Bool = false) async throws { try await ffi { try await inner.signOut(wipe: wipe) } }
    public func user() async throws -> Row? { try await ffi { try await inner.user() }.map(row) }

    public func insert(_ table: String, _ value: Row) async throws -> Row { row(try await ffi { try await inner.insert(table: table, rowJson: try json(value)) }) }
    public func update(_ table: String, _ localId: String, _ fields: Row) async throws -> Row { row(try await ffi { try await inner.update(table: table, localId: localId, fieldsJson: try json(fields)) }) }
    public func delete(_ table: String, _ localId: String) async throws { try await ffi { try await inner.delete(table: table, localId: localId) } }
    /// Queue a call of a server function on a row (one the SQL kit allows, such as a usage
    /// counter): it runs once on the server, in order with the row's writes; `effect`
    /// shows at once until the server's result replaces it.
    public func call(_ table: String, _ localId: String, _ function: String, args: Row = [:], effect: Row = [:]) async throws -> Row {
        row(try await ffi { try await inner.call(table: table, localId: localId, function: function, argsJson: try json(args), effectJson: try json(effect)) })
    }
    public func get(_ table: String, _ localId: String) async throws -> Row? { try await ffi { try await inner.get(table: table, localId: localId) }.map(row) }
    public func query(_ table: String, where where_: Row? = nil, order: String? = nil, limit: Int? = nil) async throws -> [Row] {
        rows(try await ffi { try await inner.query(table: table, queryJson: try query(where_, order, limit)) })
    }

    /// A query in PostgREST's URL syntax (`"conversations?select=title,messages(count)"`),
    /// answered from the replica: `["data": …, "count": …, "sync": […]]`.
    public func select(_ url: String, count: Bool = false, single: Bool = false, maybeSingle: Bool = false) async throws -> Row {
        row(try await ffi { try await inner.select(url: url, optionsJson: try selectOptions(count: count, single: single, maybeSingle: maybeSingle)) })
    }

    public func sync(timeoutMs: UInt64 = 30_000) async throws -> Row { row(try await ffi { try await inner.sync(timeoutMs: timeoutMs) }) }
    public func syncNow() async throws { try await ffi { try await inner.syncNow() } }
    public func status() async throws -> Row { row(try await ffi { try await inner.status() }) }
    public func rejected() async throws -> [Row] { rows(try await ffi { try await inner.rejected() }) }
    public func retry(_ localId: String) async throws { try await ffi { try await inner.retry(localId: localId) } }
    public func discard(_ localId: String) async throws { try await ffi { try await inner.discard(localId: localId) } }
    public func history(limit: UInt32 = 20) async throws -> [Row] { rows(try await ffi { try await inner.history(limit: limit) }) }
    /// Keep `data` as `bucket/path` here at once and queue its upload (before any row naming it).
    public func uploadFile(_ bucket: String, _ path: String, data: Data, contentType: String = "application/octet-stream") async throws -> Row {
        row(try await ffi { try await inner.uploadFile(bucket: bucket, path: path, data: data, contentType: contentType) })
    }
    /// What this device knows of a file (`status`, `size`, `cached`…), or nil.
    public func file(_ bucket: String, _ path: String) async throws -> Row? {
        try await ffi { try await inner.file(bucket: bucket, path: path) }.map(row)
    }
    public func files(_ bucket: String) async throws -> [Row] { rows(try await ffi { try await inner.files(bucket: bucket) }) }
    /// The file's bytes: kept here (offline too), else downloaded and kept.
    public func readFile(_ bucket: String, _ path: String) async throws -> Data {
        try await ffi { try await inner.readFile(bucket: bucket, path: path) }
    }
    /// A `file://` URL an image or document view can show, offline too.
    public func fileUrl(_ bucket: String, _ path: String) async throws -> URL? {
        URL(string: try await ffi { try await inner.fileUrl(bucket: bucket, path: path) })
    }
    public func removeFile(_ bucket: String, _ path: String) async throws { try await ffi { try await inner.removeFile(bucket: bucket, path: path) } }
    /// "realtime", "manual", or "every:<ms>".
    public func setMode(_ mode: String) async throws { try await ffi { try await inner.setMode(mode: mode) } }
    public func pause() async throws { try await ffi { try await inner.pause() } }
    public func resume() async throws { try await ffi { try await inner.resume() } }

    /// The rows now, then after every change; ending the iteration (or the task) stops it.
    /// `select`, live: the answer now and after every change that alters it.
    public func liveSelect(_ url: String, count: Bool = false, single: Bool = false, maybeSingle: Bool = false) -> AsyncThrowingStream<Row, Error> {
        AsyncThrowingStream { cont in
            let task = Task {
                do {
                    let options = try selectOptions(count: count, single: single, maybeSingle: maybeSingle)
                    let sub = try await ffi { try await inner.liveSelect(url: url, optionsJson: options, listener: AnswerBridge(cont)) }
                    cont.onTermination = { _ in sub.cancel() }
                } catch {
                    cont.finish(throwing: error)
                }
            }
            _ = task
        }
    }

    public func live(_ table: String, where where_: Row? = nil, order: String? = nil, limit: Int? = nil) -> AsyncThrowingStream<[Row], Error> {
        AsyncThrowingStream { cont in
            let task = Task {
                do {
                    let sub = try await ffi { try await inner.live(table: table, queryJson: try query(where_, order, limit), listener: RowsBridge(cont)) }
                    cont.onTermination = { _ in sub.cancel() }
                } catch {
                    cont.finish(throwing: error)
                }
            }
            _ = task
        }
    }

    /// Status snapshots: now, then on every change.
    public func statuses() -> AsyncStream<Row> {
        AsyncStream { cont in
            Task {
                if let sub = try? await inner.statuses(listener: StatusBridge(cont)) {
                    cont.onTermination = { _ in sub.cancel() }
                } else {
                    cont.finish()
                }
            }
        }
    }

    /// Broadcast (acknowledged) and presence; `onEvent` gets each event.
    public func channel(_ name: String, presenceKey: String? = nil, onEvent: @escaping (Row) -> Void = { _ in }) async throws -> Channel {
        Channel(try await ffi { try await inner.channel(name: name, presenceKey: presenceKey, listener: ChannelBridge(onEvent)) })
    }

    /// Stop syncing; live queries end; later calls throw kind "closed".
    public func close() async throws { try await ffi { try await inner.closeReplica() } }
}

/// A Realtime channel of a replica.
public final class Channel: @unchecked Sendable {
    let inner: FfiChannel
    init(_ inner: FfiChannel) { self.inner = inner }
    public func send(_ event: String, _ payload: Any) async throws { try await ffi { try await inner.send(event: event, payloadJson: try json(payload)) } }
    public func track(_ payload: Row) async throws { try await ffi { try await inner.track(payloadJson: try json(payload)) } }
    public func untrack() async throws { try await ffi { try await inner.untrack() } }
    public func leave() { inner.leave() }
}
