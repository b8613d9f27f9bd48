// The chat schema's rows as the app reads them (examples/chat/migrations).
export interface Conversation extends Record<string, unknown> {
  title: string | null;
  /** The owner (set by the server); another user's id on a conversation shared with you. */
  user_id?: string;
  message_count?: number;
}

export interface Message extends Record<string, unknown> {
  conversation_id: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  timestamp: string;
  /** The path of an attached image in the `attachments` bucket (its own folder per user). */
  attachment?: string | null;
}

export interface Memory extends Record<string, unknown> {
  content: string;
  context: string | null;
  importance_score?: number;
  tag: string | null;
}
