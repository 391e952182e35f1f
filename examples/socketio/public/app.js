// The browser side, with @sessiond/client in cookie mode: the refresh token stays in sessiond's
// HttpOnly cookie, the access token in memory, and the Socket.IO handshake carries a one-time
// ticket. `window.SESSIOND_URL` comes from /config.js, `io` from /socket.io/socket.io.js.
import { createClient } from "/sessiond-client/index.js";

const auth = createClient({ url: window.SESSIOND_URL });
const status = document.querySelector("#status");
const logoutButton = document.querySelector("#logout");
const show = (text) => { status.textContent = text; };
let socket = null;

// A socket only once signed in; each (re)connection attempt gets a new ticket (they work once).
function connect() {
  socket?.disconnect();
  let ticketError = null;
  socket = io({
    auth: (cb) => auth.wsTicket().then(
      (ticket) => { ticketError = null; cb({ ticket }); },
      (err) => { ticketError = err; cb({}); },
    ),
  });
  socket.on("hello", (user) => show(`connected as ${user.sub}${user.is_guest ? " (guest)" : ` (${user.email})`}`));
  socket.on("connect_error", (err) => show((ticketError ?? err).message));
  // The server closes the socket when the session ends (logout elsewhere, revocation…).
  socket.on("session_ended", ({ reason }) => show(`session ended: ${reason}`));
}

// Restored from the cookie at load, or signed in here or in another tab: connect. Signed out
// anywhere: disconnect. The first event is initial_session (user null: nobody signed in) or
// restore_failed.
auth.onChange(({ type, user, remote }) => {
  const signedIn = type === "signed_in" || (type === "initial_session" && user !== null);
  logoutButton.hidden = !signedIn && type !== "refreshed";
  if (signedIn) connect();
  if (type === "signed_out") {
    socket?.disconnect();
    socket = null;
    if (remote) show("logged out in another tab");
  }
});

async function signIn(action) {
  try {
    show("signing in…");
    await action();
  } catch (err) {
    show(err.message);
  }
}

document.querySelector("#guest").addEventListener("click", () => signIn(() => auth.guest()));

document.querySelector("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const [email, password] = [form.get("email"), form.get("password")];
  signIn(() => event.submitter?.value === "signup" ? auth.signUp(email, password) : auth.logIn(email, password));
});

logoutButton.addEventListener("click", async () => {
  try {
    await auth.logOut();
    show("logged out");
  } catch (err) {
    show(err.message);
  }
});
