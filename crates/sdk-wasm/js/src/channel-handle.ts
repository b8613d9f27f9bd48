// The app's side of a broadcast and presence channel, whichever SDK carries its
// messages: listeners for broadcasts and presence, the latest presence picture, and
// the calls that reach the server (`ChannelOps`). The browser package (index.ts) and
// the Tauri example both build their SyncChannel with it, so channel events mean the
// same thing in both.

import type { PresenceState, SyncChannel } from './types.js';

/** A channel event as the SDKs deliver it (`ChannelEvent::app_json` in the core). */
export interface ChannelEventJson {
  type: string;
  event?: string;
  payload?: unknown;
  state?: PresenceState;
}

/** What reaches the server; each SDK implements these. */
export interface ChannelOps {
  send(event: string, payload: unknown): Promise<void>;
  track(payload: Record<string, unknown>): Promise<void>;
  untrack(): Promise<void>;
  leave(): void;
}

/** A SyncChannel over `ops`; feed it the channel's events with `deliver`. */
export function channelHandle(name: string, ops: ChannelOps): SyncChannel & { deliver(ev: ChannelEventJson): void } {
  const broadcast = new Set<(event: string, payload: unknown) => void>();
  const presence = new Set<(state: PresenceState) => void>();
  let present: PresenceState = {};
  return {
    name,
    deliver(ev) {
      if (ev.type === 'broadcast') for (const f of broadcast) f(ev.event ?? '', ev.payload);
      if (ev.type === 'presence' && ev.state) {
        present = ev.state;
        for (const f of presence) f(present);
      }
    },
    send: (event, payload) => ops.send(event, payload),
    onBroadcast: (f) => {
      broadcast.add(f);
      return () => void broadcast.delete(f);
    },
    track: (payload) => ops.track(payload),
    untrack: () => ops.untrack(),
    onPresence: (f) => {
      presence.add(f);
      f(present);
      return () => void presence.delete(f);
    },
    presence: () => present,
    leave: () => ops.leave(),
  };
}
