import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useBroadcast, useChannel, useFileUrl, useLiveQuery, useReplica } from 'supasync/react';
import type { Conversation, Memory, Message } from './types';

const ROLES = ['user', 'assistant', 'system', 'tool'] as const;

/** Who else is typing in this conversation (broadcast, not stored). */
function useTyping(conversation: string, device: string) {
  const channel = useChannel(`typing:${conversation}`);
  const [others, setOthers] = useState<Record<string, number>>({});
  useBroadcast(channel, (event, payload) => {
    const who = (payload as { who?: string }).who;
    if (event === 'typing' && who && who !== device) setOthers((o) => ({ ...o, [who]: Date.now() }));
  });
  useEffect(() => {
    const t = setInterval(() => setOthers((o) => Object.fromEntries(Object.entries(o).filter(([, at]) => Date.now() - at < 3000))), 1000);
    return () => clearInterval(t);
  }, []);
  const last = useRef(0);
  const typing = () => {
    if (Date.now() - last.current < 1000) return;
    last.current = Date.now();
    channel?.send('typing', { who: device }).catch(() => undefined);
  };
  return { typingNow: Object.keys(others), typing };
}

/** The title, edited locally and saved on Enter or when the field loses focus. Enter
 * saves by itself: a window without focus gets no blur event (Firefox). */
function TitleEdit({ title, save }: { title: string; save: (t: string) => Promise<unknown> }) {
  const [draft, setDraft] = useState<string>();
  // What is typed and not saved yet, read by whichever of Enter and blur comes first.
  const unsaved = useRef<string | undefined>(undefined);
  const edit = (t: string) => {
    unsaved.current = t;
    setDraft(t);
  };
  const commit = () => {
    const t = unsaved.current;
    unsaved.current = undefined;
    if (t !== undefined && t !== title) save(t).catch(() => undefined);
    setDraft(undefined);
  };
  return (
    <input
      className="title-edit"
      aria-label="conversation title"
      value={draft ?? title}
      onChange={(e) => edit(e.target.value)}
      onBlur={commit}
      onKeyDown={(e) => {
        if (e.key !== 'Enter') return;
        commit();
        e.currentTarget.blur();
      }}
    />
  );
}

/** Share the conversation with another user by email: a queued call, so it works
 * offline too; a refusal (no such user) shows in the rejected list with its reason. */
function ShareForm({ conversation }: { conversation: string }) {
  const db = useReplica();
  const [email, setEmail] = useState('');
  async function share(e: FormEvent) {
    e.preventDefault();
    if (!email.trim()) return;
    await db.call<Conversation>('conversations', conversation, 'share_conversation', { args: { email: email.trim() } });
    setEmail('');
  }
  return (
    <form className="share" onSubmit={share}>
      <input aria-label="share with (email)" placeholder="share with (email)" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
      <button type="submit">Share</button>
    </form>
  );
}

/** An attached image: from the device when it is kept (offline too, and at once after
 * it was attached here), else fetched from Storage once. */
function Attachment({ path }: { path: string }) {
  const [url, error] = useFileUrl('attachments', path);
  if (error) return <span className="attachment-missing" title={error.message}>image unavailable</span>;
  return url ? <img className="attachment" alt="attachment" src={url} /> : <span className="attachment-loading">…</span>;
}

/** A file name as a Storage key part: letters, digits, `.`, `_` and `-`. */
function keyPart(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-80) || 'file';
}

/** A row as the replica answers it: the app's columns and its local id. */
type Local<T> = T & { local_id: string };

export function Chat({ conversation, device }: { conversation: string; device: string }) {
  const db = useReplica();
  // Each list is the query supabase-js would send, answered by the replica, live.
  const conv = useLiveQuery(db.from<Local<Conversation>>('conversations').select('*').eq('local_id', conversation))?.data?.[0];
  const answer = useLiveQuery(db.from<Local<Message>>('messages').select('*').eq('conversation_id', conversation).order('timestamp'));
  const messages = answer?.data;
  // Each row's sync state comes next to the data (`sync`), by local id.
  const states = new Map(answer?.sync.map((s) => [s.local_id, s.status.state]));
  const memories = useLiveQuery(db.from<Pick<Memory, 'context'>>('memories').select('context').eq('tag', 'important'))?.data;
  const [text, setText] = useState('');
  const [image, setImage] = useState<File>();
  const fileInput = useRef<HTMLInputElement>(null);
  const [role, setRole] = useState<Message['role']>('user');
  const { typingNow, typing } = useTyping(conversation, device);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Braces on purpose: newer browsers return a promise from scrollIntoView, and an
    // effect must return nothing but a cleanup function.
    void end.current?.scrollIntoView({ block: 'end' });
  }, [messages?.length]);

  async function send(e: FormEvent) {
    e.preventDefault();
    if (!text.trim() && !image) return;
    let attachment: string | null = null;
    if (image) {
      // The file first, then the message naming it: the message reaches no other
      // device before the image is in Storage.
      attachment = `${db.auth.user()?.id ?? 'anonymous'}/${crypto.randomUUID()}-${keyPart(image.name)}`;
      await db.files.upload('attachments', attachment, image, { contentType: image.type || 'application/octet-stream' });
    }
    await db.insert<Message>('messages', { conversation_id: conversation, role, content: text || image?.name || '', timestamp: new Date().toISOString(), attachment });
    setText('');
    setImage(undefined);
    if (fileInput.current) fileInput.current.value = '';
  }

  const important = new Set(memories?.map((m) => m.context));
  // Not yet on the server (no owner yet), or this user's own.
  const mine = !conv?.user_id || conv.user_id === db.auth.user()?.id;

  async function markImportant(m: Local<Message>) {
    await db.insert<Memory>('memories', { content: m.content, context: `message:${m.local_id}`, tag: 'important', importance_score: 1 });
  }

  return (
    <>
      <div className="chat-head">
        <TitleEdit key={conversation} title={conv?.title ?? ''} save={(title) => db.update<Conversation>('conversations', conversation, { title })} />
        {conv && (mine ? <ShareForm conversation={conversation} /> : <span className="shared-badge" data-testid="shared-with-me">shared with you</span>)}
      </div>
      <div className="messages" data-testid="messages">
        {messages?.map((m) => {
          const state = states.get(m.local_id) ?? 'synced';
          return (
          <div key={m.local_id} className={`message role-${m.role} state-${state}`} data-testid="message">
            <span className="role">{m.role}</span>
            <span className="content">{m.content}</span>
            {m.attachment && <Attachment path={m.attachment} />}
            {state === 'pending' && <span className="tick" title="waiting to be sent">◷</span>}
            <button
              className={important.has(`message:${m.local_id}`) ? 'star on' : 'star'}
              title="mark as important"
              aria-label="mark as important"
              disabled={important.has(`message:${m.local_id}`)}
              onClick={() => markImportant(m)}
            >
              ★
            </button>
          </div>
          );
        })}
        <div ref={end} />
      </div>
      <p className="typing" data-testid="typing">{typingNow.length > 0 ? `${typingNow.join(', ')} ${typingNow.length > 1 ? 'are' : 'is'} typing…` : '\u00a0'}</p>
      <form className="composer" onSubmit={send}>
        <select aria-label="role" value={role} onChange={(e) => setRole(e.target.value as Message['role'])}>
          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
        <input aria-label="message" placeholder="Write a message" value={text} onChange={(e) => { setText(e.target.value); typing(); }} />
        <input ref={fileInput} aria-label="attach image" type="file" accept="image/*" onChange={(e) => setImage(e.target.files?.[0])} />
        <button type="submit">Send</button>
      </form>
    </>
  );
}
