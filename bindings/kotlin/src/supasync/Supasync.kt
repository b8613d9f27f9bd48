// supasync for Kotlin: suspend functions, Flows for live queries and statuses, rows as
// Map<String, Any?>, one SupaSyncError with the CLI's kinds. A thin layer over the
// generated uniffi code (package uniffi.supasync_ffi); nothing of sync lives here.
package supasync

import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import uniffi.supasync_ffi.ChannelListener
import uniffi.supasync_ffi.FfiChannel
import uniffi.supasync_ffi.FfiReplica
import uniffi.supasync_ffi.RowsListener
import uniffi.supasync_ffi.StatusListener
import uniffi.supasync_ffi.SupaSyncException
import java.io.File

typealias Row = Map<String, Any?>

/** Every failure, sealed by kind, so `when (e) { is SupaSyncError.Auth -> … }` covers
 *  them: [kind] is the CLI's name for it (`invalid`, `store`, `key`, `server`, `auth`,
 *  `not_found`, `timeout`, `closed`, `config`, …) and [detail] says why. */
sealed class SupaSyncError(val kind: String, val detail: String) : Exception("$kind: $detail") {
    class Invalid(detail: String) : SupaSyncError("invalid", detail)
    class Store(detail: String) : SupaSyncError("store", detail)
    /** An encrypted replica and the key given do not go together (nothing changed). */
    class Key(detail: String) : SupaSyncError("key", detail)
    class Server(detail: String) : SupaSyncError("server", detail)
    class Auth(detail: String) : SupaSyncError("auth", detail)
    class NotFound(detail: String) : SupaSyncError("not_found", detail)
    class Timeout(detail: String) : SupaSyncError("timeout", detail)
    class Closed(detail: String) : SupaSyncError("closed", detail)
    /** The set-up is wrong: a schema file, a URL, the library's own runtime. */
    class Config(kind: String, detail: String) : SupaSyncError(kind, detail)

    companion object {
        /** The error of a kind, as the library names it. */
        fun of(kind: String, detail: String): SupaSyncError = when (kind) {
            "invalid" -> Invalid(detail)
            "store" -> Store(detail)
            "key" -> Key(detail)
            "server" -> Server(detail)
            "auth" -> Auth(detail)
            "not_found" -> NotFound(detail)
            "timeout" -> Timeout(detail)
            "closed" -> Closed(detail)
            else -> Config(kind, detail)
        }
    }
}

private suspend inline fun <T> ffi(crossinline block: suspend () -> T): T =
    try {
        block()
    } catch (e: SupaSyncException.Failed) {
        throw SupaSyncError.of(e.kind, e.detail)
    }

private fun selectOptions(count: Boolean, single: Boolean, maybeSingle: Boolean): String {
    require(!(single && maybeSingle)) { "single and maybeSingle exclude each other" }
    return Json.write(mapOf("count" to count, "cardinality" to if (single) "one" else if (maybeSingle) "maybe_one" else "many"))
}

@Suppress("UNCHECKED_CAST")
private fun row(json: String): Row = Json.parse(json) as Row

@Suppress("UNCHECKED_CAST")
private fun rows(json: String): List<Row> = Json.parse(json) as List<Row>

private fun query(where: Row?, order: String?, limit: Int?): String =
    Json.write(mapOf("where" to where, "order" to order, "limit" to limit))

/**
 * Open the replica of the user signed in on this device. [path] is the replica
 * directory (the CLI's layout); without one the replica lives in memory. [schema] is
 * the CLI's JSON schema, as JSON text or the path of the file.
 *
 * With [encryptionKey] (32 bytes, kept in the Android Keystore or the app's secret
 * store) every user's store in [path] is encrypted at rest; plaintext stores there are
 * encrypted as they open, pending writes kept. A key that does not open them throws
 * [SupaSyncError.Key].
 */
suspend fun openReplica(url: String, anonKey: String, schema: String, path: String? = null, encryptionKey: ByteArray? = null): Replica {
    val schemaJson = if (schema.trimStart().startsWith("{")) schema else try {
        File(schema).readText()
    } catch (e: java.io.IOException) {
        throw SupaSyncError.Config("config", "schema: ${e.message}")
    }
    if (encryptionKey == null) return Replica(ffi { uniffi.supasync_ffi.openReplica(url, anonKey, schemaJson, path) })
    if (path == null) throw SupaSyncError.Invalid("an encryption key needs a replica directory (path): a replica in memory is never on disk")
    return Replica(ffi { uniffi.supasync_ffi.openEncryptedReplica(url, anonKey, schemaJson, path, encryptionKey) })
}

/**
 * Encrypt the closed replica in [path] with [newKey] (every user's store), from [oldKey]
 * (null: it is plaintext). Pending writes stay pending. Run it again with the same keys
 * if it stopped half way.
 */
suspend fun rekeyReplica(path: String, oldKey: ByteArray?, newKey: ByteArray) =
    ffi { uniffi.supasync_ffi.rekeyReplica(path, oldKey, newKey) }

/** One user's replica on this device. Live sync runs while someone is signed in. */
class Replica internal constructor(private val inner: FfiReplica) {
    suspend fun signUp(email: String, password: String): Row = row(ffi { inner.signUp(email, password) })
    suspend fun signIn(email: String, password: String): Row = row(ffi { inner.signIn(email, password) })
    suspend fun signOut(wipe: Boolean = false) = ffi { inner.signOut(wipe) }
    suspend fun user(): Row? = ffi { inner.user() }?.let(::row)

    suspend fun insert(table: String, row: Row): Row = row(ffi { inner.insert(table, Json.write(row)) })
    suspend fun update(table: String, localId: String, fields: Row): Row = row(ffi { inner.update(table, localId, Json.write(fields)) })
    suspend fun delete(table: String, localId: String) = ffi { inner.delete(table, localId) }
    /** Queue a call of a server function on a row (one the SQL kit allows, such as a usage
     * counter): it runs once on the server, in order with the row's writes; [effect]
     * shows at once until the server's result replaces it. */
    suspend fun call(table: String, localId: String, function: String, args: Row = emptyMap(), effect: Row = emptyMap()): Row =
        row(ffi { inner.call(table, localId, function, Json.write(args), Json.write(effect)) })
    suspend fun get(table: String, localId: String): Row? = ffi { inner.get(table, localId) }?.let(::row)
    suspend fun query(table: String, where: Row? = null, order: String? = null, limit: Int? = null): List<Row> =
        rows(ffi { inner.query(table, query(where, order, limit)) })

    /**
     * A query in PostgREST's URL syntax (`"conversations?select=title,messages(count)"`),
     * answered from the replica: `{"data", "count", "sync"}`, `data` as PostgREST shapes it.
     */
    suspend fun select(url: String, count: Boolean = false, single: Boolean = false, maybeSingle: Boolean = false): Row =
        row(ffi { inner.select(url, selectOptions(count, single, maybeSingle)) })

    /** [select], live: the answer now and after every change that alters it. */
    fun liveSelect(url: String, count: Boolean = false, single: Boolean = false, maybeSingle: Boolean = false): Flow<Row> = callbackFlow {
        val sub = ffi {
            inner.liveSelect(url, selectOptions(count, single, maybeSingle), object : RowsListener {
                override fun onRows(rowsJson: String) {
                    trySend(row(rowsJson))
                }
                override fun onError(kind: String, message: String) {
                    close(SupaSyncError.of(kind, message))
                }
                override fun onEnd() {
                    close()
                }
            })
        }
        awaitClose { sub.cancel() }
    }

    /** Push, then pull, until no write waits (as `supasync sync`). */
    suspend fun sync(timeoutMs: Long = 30_000): Row = row(ffi { inner.sync(timeoutMs.coerceAtLeast(0).toULong()) })
    suspend fun syncNow() = ffi { inner.syncNow() }
    suspend fun status(): Row = row(ffi { inner.status() })
    suspend fun rejected(): List<Row> = rows(ffi { inner.rejected() })
    suspend fun retry(localId: String) = ffi { inner.retry(localId) }
    suspend fun discard(localId: String) = ffi { inner.discard(localId) }
    suspend fun history(limit: Int = 20): List<Row> = rows(ffi { inner.history(limit.coerceAtLeast(0).toUInt()) })

    /** Keep [data] as `bucket/path` here at once and queue its upload (before any row naming it). */
    suspend fun uploadFile(bucket: String, path: String, data: ByteArray, contentType: String = "application/octet-stream"): Row =
        row(ffi { inner.uploadFile(bucket, path, data, contentType) })
    /** What this device knows of a file (`status`, `size`, `cached`…), or null. */
    suspend fun file(bucket: String, path: String): Row? = ffi { inner.file(bucket, path) }?.let(::row)
    suspend fun files(bucket: String): List<Row> = rows(ffi { inner.files(bucket) })
    /** The file's bytes: kept here (offline too), else downloaded and kept. */
    suspend fun readFile(bucket: String, path: String): ByteArray = ffi { inner.readFile(bucket, path) }
    /** A `file://` URL a view can show, offline too. */
    suspend fun fileUrl(bucket: String, path: String): String = ffi { inner.fileUrl(bucket, path) }
    suspend fun removeFile(bucket: String, path: String) = ffi { inner.removeFile(bucket, path) }

    /** `"realtime"` or `"manual"`. */
    suspend fun setMode(mode: String) = ffi { inner.setMode(mode) }
    /** Poll every [everyMs] milliseconds. */
    suspend fun setMode(everyMs: Long) = ffi { inner.setMode("every:$everyMs") }
    suspend fun pause() = ffi { inner.pause() }
    suspend fun resume() = ffi { inner.resume() }

    /** The rows now, then after every change that alters them; cancelling the
     *  collecting coroutine stops the query. */
    fun live(table: String, where: Row? = null, order: String? = null, limit: Int? = null): Flow<List<Row>> = callbackFlow {
        val sub = ffi {
            inner.live(table, query(where, order, limit), object : RowsListener {
                override fun onRows(rowsJson: String) {
                    trySend(rows(rowsJson))
                }
                override fun onError(kind: String, message: String) {
                    close(SupaSyncError.of(kind, message))
                }
                override fun onEnd() {
                    close()
                }
            })
        }
        awaitClose { sub.cancel() }
    }

    /** Status snapshots: now, then on every change. */
    fun statuses(): Flow<Row> = callbackFlow {
        val sub = ffi {
            inner.statuses(object : StatusListener {
                override fun onStatus(statusJson: String) {
                    trySend(row(statusJson))
                }
                override fun onEnd() {
                    close()
                }
            })
        }
        awaitClose { sub.cancel() }
    }

    /** Broadcast (acknowledged) and presence; [onEvent] gets each event as a map. */
    suspend fun channel(name: String, presenceKey: String? = null, onEvent: (Row) -> Unit = {}): Channel =
        Channel(ffi {
            inner.channel(name, presenceKey, object : ChannelListener {
                override fun onEvent(eventJson: String) = onEvent(row(eventJson))
            })
        })

    /** Stop syncing; live queries end; later calls throw kind `closed`. */
    suspend fun close() = ffi { inner.closeReplica() }
}

/** A Realtime channel of a replica. */
class Channel internal constructor(private val inner: FfiChannel) {
    suspend fun send(event: String, payload: Any?) = ffi { inner.send(event, Json.write(payload)) }
    suspend fun track(payload: Row) = ffi { inner.track(Json.write(payload)) }
    suspend fun untrack() = ffi { inner.untrack() }
    fun leave() = inner.leave()
}
