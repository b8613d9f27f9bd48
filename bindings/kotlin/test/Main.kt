// The Kotlin binding as an app uses it, against a dev server (SUPABASE_URL,
// SUPABASE_ANON_KEY): two devices of one user in two directories, offline writes with
// a parent reference, sync and restore, a live query collected as a Flow, the status
// Flow, cancelling the collecting coroutine, a refusal, and bad input. Prints one line
// per check and exits non-zero on the first failure.
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import supasync.Replica
import supasync.SupaSyncError
import supasync.openReplica
import supasync.rekeyReplica
import java.nio.file.Files
import kotlin.system.exitProcess

var checks = 0

fun check(what: String, ok: Boolean) {
    if (!ok) {
        System.err.println("FAILED: $what")
        exitProcess(1)
    }
    checks++
    println("ok - $what")
}

suspend fun expectError(kind: String, what: String, block: suspend () -> Unit) {
    try {
        block()
        check("$what (no error)", false)
    } catch (e: SupaSyncError) {
        check("$what: ${e.kind} (${e.detail.take(60)})", e.kind == kind)
    }
}

fun main() = runBlocking {
    val url = System.getenv("SUPABASE_URL") ?: error("SUPABASE_URL is not set")
    val key = System.getenv("SUPABASE_ANON_KEY") ?: error("SUPABASE_ANON_KEY is not set")
    val schema = System.getenv("SUPASYNC_SCHEMA") ?: "examples/chat/schema.json"
    val email = "kt-${System.nanoTime()}@example.com"
    val password = "correct-horse-battery"
    suspend fun device(): Replica = openReplica(url, key, schema, Files.createTempDirectory("supasync-kt").toString())

    withTimeout(90_000) {
        val a = device()
        check("signed out at first", a.user() == null)
        val me = a.signUp(email, password)
        check("sign up returns the user", me["email"] == email)
        a.pause()
        val c = a.insert("conversations", mapOf("title" to "From Kotlin"))
        val m = a.insert("messages", mapOf("conversation_id" to c["local_id"], "role" to "user", "content" to "hello"))
        check("an offline write is pending", (m["status"] as Map<*, *>)["state"] == "pending")
        check("the status counts both", a.status()["pending"] == 2L)
        val settled = a.sync(30_000)
        check("sync settles", (settled["status"] as Map<*, *>)["pending"] == 0L)

        // The status counts every write that returned, and a reopened replica's status
        // says what waits as soon as open returns (here where the server cannot be
        // reached), with live sync starting rather than paused.
        val dir = Files.createTempDirectory("supasync-kt").toString()
        val r = openReplica(url, key, schema, dir)
        r.signIn(email, password)
        r.pause()
        val conv = r.insert("conversations", mapOf("title" to "counted"))
        (0 until 3).map { i -> async { r.insert("messages", mapOf("conversation_id" to conv["local_id"], "role" to "user", "content" to "m$i")) } }.forEach { it.await() }
        check("the status counts every write that returned", r.status()["pending"] == 4L)
        r.close()
        val reopened = openReplica("http://127.0.0.1:9", key, schema, dir)
        val st = reopened.status()
        check("a reopened replica's status counts its waiting writes at once", st["pending"] == 4L)
        check("and says live sync is starting, not paused (${st["phase"]})", st["phase"] != "paused")
        reopened.close()

        val b = device()
        b.signIn(email, password)
        b.sync(30_000)
        val restored = b.query("messages", where = mapOf("conversation_id" to c["local_id"]))
        check("the other device restores the message under the same keys",
            restored.map { it["local_id"] } == listOf(m["local_id"]) && (restored[0]["row"] as Map<*, *>)["content"] == "hello")

        // A live query on B, collected as a Flow, yields A's new message.
        val firstWithRows = async { b.live("messages", order = "content").first { rows -> rows.any { (it["row"] as Map<*, *>)["content"] == "live from Kotlin" } } }
        b.statuses().first { it["phase"] == "live" }
        a.resume()
        a.insert("messages", mapOf("conversation_id" to c["local_id"], "role" to "user", "content" to "live from Kotlin"))
        check("B's live Flow yields A's message", firstWithRows.await().size == 2)

        // Cancelling the collecting coroutine stops the subscription; the replica goes on.
        val seen = mutableListOf<Int>()
        val job = launch { b.live("memories").collect { seen.add(it.size) } }
        b.statuses().first()
        job.cancel()
        job.join()
        b.insert("memories", mapOf("content" to "after cancel"))
        check("the cancelled collector saw no more results", seen.all { it == 0 })
        check("the replica still works", b.query("memories").size == 1)

        // A file written offline goes before the message that names it; the other
        // device reads it from Storage, then from a file:// URL.
        a.pause()
        val photoPath = "${me["id"]}/kt-photo.png"
        val photo = ByteArray(30_000) { (it % 251).toByte() }
        check("an upload is kept here at once", a.uploadFile("attachments", photoPath, photo, "image/png")["status"] == "pending")
        check("and read from here while offline", a.readFile("attachments", photoPath).contentEquals(photo))
        a.insert("messages", mapOf("conversation_id" to c["local_id"], "role" to "user", "content" to "photo", "attachment" to photoPath))
        a.resume()
        a.sync(30_000)
        check("the file is stored", a.file("attachments", photoPath)?.get("status") == "synced")
        b.sync(30_000)
        check("the other device reads it", b.readFile("attachments", photoPath).contentEquals(photo))
        val fileUrl = b.fileUrl("attachments", photoPath)
        check("its file:// URL holds its bytes", java.io.File(java.net.URI(fileUrl)).readBytes().contentEquals(photo))
        expectError("invalid", "a path with ..") { b.uploadFile("attachments", "../x", ByteArray(1)) }

        // A write the server refuses is rolled back with its reason, then discarded.
        val bad = a.insert("messages", mapOf("role" to "robot", "content" to "refused"))
        a.sync(30_000)
        val rejected = a.rejected()
        check("the refusal is listed with its reason",
            rejected.size == 1 && (rejected[0]["rejected"] as String).contains("messages_role_check"))
        check("the refused row is rolled back", a.get("messages", bad["local_id"] as String) == null)
        a.discard(bad["local_id"] as String)
        check("discard empties the list", a.rejected().isEmpty())

        // Shared data: a conversation shared by email (a queued call) reaches the other
        // user with its message, and leaves when the share is withdrawn.
        val guestEmail = "kt-guest-${System.nanoTime()}@example.com"
        val guest = device()
        guest.signUp(guestEmail, password)
        val shared = a.insert("conversations", mapOf("title" to "Shared from Kotlin"))
        a.insert("messages", mapOf("conversation_id" to shared["local_id"], "role" to "user", "content" to "for the guest"))
        val call = a.call("conversations", shared["local_id"] as String, "share_conversation", args = mapOf("email" to guestEmail))
        check("a queued call is pending", (call["status"] as Map<*, *>)["state"] == "pending")
        a.sync(30_000)
        guest.sync(30_000)
        check("the guest gets the shared conversation",
            guest.query("conversations").map { (it["row"] as Map<*, *>)["title"] } == listOf("Shared from Kotlin"))
        check("and its message", guest.query("messages").map { (it["row"] as Map<*, *>)["content"] } == listOf("for the guest"))
        a.call("conversations", shared["local_id"] as String, "unshare_conversation", args = mapOf("email" to guestEmail))
        a.sync(30_000)
        guest.sync(30_000)
        check("unshared, it leaves the guest's device", guest.query("conversations").isEmpty())
        expectError("invalid", "a call whose effect sets the key") {
            a.call("conversations", shared["local_id"] as String, "share_conversation", effect = mapOf("id" to "x"))
        }
        guest.close()

        val counted = a.select("messages?select=content,conversations(title)&conversation_id=eq.${shared["local_id"]}", count = true)
        check("a query in PostgREST's syntax answers with embeds and a count",
            counted["data"] == listOf(mapOf("content" to "for the guest", "conversations" to mapOf("title" to "Shared from Kotlin"))) &&
                (counted["count"] as Number).toInt() == 1)
        expectError("invalid", "a query embedding what nothing references") { a.select("conversations?select=*,memories(*)") }
        expectError("invalid", "an unknown table") { a.insert("nope", mapOf("a" to 1)) }
        expectError("invalid", "a bad limit") { a.query("messages", limit = -1) }
        expectError("not_found", "retrying nothing") { a.retry("no-such-write") }
        expectError("auth", "a wrong password") { device().signIn(email, "wrong") }
        val wrong: SupaSyncError? = try {
            device().signIn(email, "wrong")
            null
        } catch (e: SupaSyncError) {
            e
        }
        // A `when` over the sealed class needs no else branch: the compiler checks it.
        val matched = wrong?.let {
            when (it) {
                is SupaSyncError.Auth -> "Auth"
                is SupaSyncError.Invalid, is SupaSyncError.Store, is SupaSyncError.Key, is SupaSyncError.Server, is SupaSyncError.NotFound,
                is SupaSyncError.Timeout, is SupaSyncError.Closed, is SupaSyncError.Config -> it.kind
            }
        }
        check("a wrong password is a SupaSyncError.Auth", matched == "Auth")

        // Encrypted at rest: the files hold none of the data; a wrong key is its own
        // error; a key change keeps the waiting write, which then syncs.
        val encDir = Files.createTempDirectory("supasync-kt").toString()
        val secret = ByteArray(32) { (it * 7 + 3).toByte() }
        val enc = openReplica(url, key, schema, encDir, encryptionKey = secret)
        enc.signIn(email, password)
        enc.pause()
        enc.insert("memories", mapOf("content" to "kotlin secret memory"))
        enc.close()
        val raw = String(java.io.File(encDir, "users").listFiles()!!.map { it.readBytes() }.reduce { x, y -> x + y }, Charsets.ISO_8859_1)
        check("the encrypted files hold neither the row nor the email", !raw.contains("kotlin secret memory") && !raw.contains(email))
        val wrongKey = try {
            openReplica(url, key, schema, encDir, encryptionKey = ByteArray(32)).close()
            null
        } catch (e: SupaSyncError) {
            e
        }
        check("a wrong key is a SupaSyncError.Key (${wrongKey?.detail?.take(50)})", wrongKey is SupaSyncError.Key)
        val newKey = ByteArray(32) { (it * 5 + 1).toByte() }
        rekeyReplica(encDir, secret, newKey)
        val rekeyed = openReplica(url, key, schema, encDir, encryptionKey = newKey)
        check("rekeyed, the waiting write syncs", (rekeyed.sync(30_000)["status"] as Map<*, *>)["pending"] == 0L)
        check("and is there once", rekeyed.query("memories").count { (it["row"] as Map<*, *>)["content"] == "kotlin secret memory" } == 1)
        rekeyed.close()
        a.close()
        expectError("closed", "a call after close") { a.syncNow() }
        b.close()
    }
    println("$checks checks passed")
}
