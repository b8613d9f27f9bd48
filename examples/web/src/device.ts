// This browser's name among the user's devices (presence and typing): `?device=` in
// the URL, else the one chosen before, else one made up from the browser.
export function deviceName(): string {
  const fromUrl = new URLSearchParams(location.search).get('device');
  if (fromUrl) {
    localStorage.setItem('virgil:device', fromUrl);
    return fromUrl;
  }
  const saved = localStorage.getItem('virgil:device');
  if (saved) return saved;
  const ua = navigator.userAgent;
  const kind = /Mobi|Android|iPhone/.test(ua) ? 'phone' : 'browser';
  const name = `${kind}-${Math.random().toString(36).slice(2, 6)}`;
  localStorage.setItem('virgil:device', name);
  return name;
}
