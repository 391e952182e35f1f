// The browser side: sessiond keeps the refresh token in an HttpOnly cookie (cookie mode), the
// page only ever holds short-lived access tokens, and the Socket.IO handshake carries a
// one-time ticket. `window.SESSIOND_URL` comes from /config.js, `io` from /socket.io/socket.io.js.
const SESSIOND_URL = window.SESSIOND_URL;
const status = document.querySelector("#status");
const show = (text) => { status.textContent = text; };
let socket = null;

// Every call to sessiond is a credentialed cross-origin fetch, so the browser stores and sends
// the refresh cookie; a JSON body (and content type) is what the cookie's CSRF check requires.
async function sessiond(path, { body = {}, accessToken } = {}) {
  const headers = { "content-type": "application/json" };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const res = await fetch(`${SESSIOND_URL}${path}`, {
    method: "POST", credentials: "include", headers, body: JSON.stringify(body),
  });
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    throw new Error(`${path}: ${err.error_description ?? err.error ?? res.status}`);
  }
  return res.status === 204 ? null : res.json();
}

// A fresh access token from the HttpOnly refresh cookie (the page never sees the cookie).
async function accessToken() {
  const { access_token } = await sessiond("/v1/token/refresh");
  return access_token;
}

// A one-time WebSocket ticket (valid 30 s, redeemed by the Socket.IO server).
async function wsTicket() {
  const { ticket } = await sessiond("/v1/ws-tickets", { accessToken: await accessToken() });
  return ticket;
}

// The Socket.IO handshake carries a ticket; the server redeems it (see server.js).
function connect() {
  socket?.disconnect();
  let ticketError = null;
  socket = io({
    // Called before every (re)connection attempt, so each one gets a new ticket (they work once).
    auth: (cb) => wsTicket().then(
      (ticket) => { ticketError = null; cb({ ticket }); },
      (err) => { ticketError = err; cb({}); },
    ),
  });
  socket.on("hello", (user) => show(`connected as ${user.sub}${user.is_guest ? " (guest)" : ` (${user.email})`}`));
  socket.on("connect_error", (err) => show((ticketError ?? err).message));
  socket.on("disconnect", (reason) => show(`disconnected: ${reason}`));
}

// Sign in (guest, login or signup): sessiond sets the refresh cookie on the token response.
async function signIn(path, body) {
  try {
    show("signing in…");
    await sessiond(path, { body });
    connect();
    document.querySelector("#logout").hidden = false;
  } catch (err) {
    show(err.message);
  }
}

document.querySelector("#guest").addEventListener("click", () => signIn("/v1/guest"));

document.querySelector("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const path = event.submitter?.value === "signup" ? "/v1/signup" : "/v1/login";
  signIn(path, { email: form.get("email"), password: form.get("password") });
});

// Logout by cookie: sessiond ends the session and expires the cookie.
document.querySelector("#logout").addEventListener("click", async () => {
  socket?.disconnect();
  socket = null;
  try {
    await sessiond("/v1/logout");
    document.querySelector("#logout").hidden = true;
    show("logged out");
  } catch (err) {
    show(err.message);
  }
});
