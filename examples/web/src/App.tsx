import { useState } from 'react';
import { useUser } from 'supasync/react';
import { SignIn } from './SignIn';
import { Header } from './Header';
import { Conversations } from './Conversations';
import { Chat } from './Chat';
import { Memories } from './Memories';
import { Rejected } from './Rejected';
import { deviceName } from './device';

export function App() {
  // Read at the first render, not when this module loads: a host page (the Tauri app)
  // names the device before it renders, after its imports have run.
  const [device] = useState(deviceName);
  const user = useUser();
  const [open, setOpen] = useState<string | undefined>();
  if (!user) return <SignIn />;
  return (
    <div className="app">
      <Header user={user} device={device} />
      <div className="body">
        <Conversations selected={open} onSelect={setOpen} />
        <main className="chat">{open ? <Chat conversation={open} device={device} /> : <p className="empty">Pick or start a conversation.</p>}</main>
        <aside className="side">
          <Rejected />
          <Memories />
        </aside>
      </div>
    </div>
  );
}
