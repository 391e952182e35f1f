// Compiled (never run) by node/test/types.test.js with `tsc --noEmit --strict`: how an app
// written in TypeScript uses @sessiond/node. A type error here fails the test.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Server } from "socket.io";
import { Sessiond, requireSession, socketAuth } from "@sessiond/node";
import type { HandshakeError, SessionAuth, SessionRequest, SocketData, StepUpOptions } from "@sessiond/node";

const sessiond = new Sessiond({ url: "http://sessiond:8080", serviceKey: "sk", events: true });

// Socket.IO: SocketData as the fourth type parameter types socket.data.session.
interface ServerToClient {
  hello: (session: SessionAuth) => void;
}
const io = new Server<Record<string, never>, ServerToClient, Record<string, never>, SocketData>(createServer());
const auth = socketAuth({ sessiond });
io.use(auth);
io.on("connection", (socket) => {
  const sub: string = socket.data.session.sub;
  const email: string | null = socket.data.session.email;
  socket.emit("hello", socket.data.session);
  void [sub, email];
});

// An app's own socket data, extending SocketData.
interface RoomData extends SocketData {
  room?: string;
}
const rooms = new Server<Record<string, never>, Record<string, never>, Record<string, never>, RoomData>();
rooms.use(socketAuth({ sessiond }));
rooms.on("connection", (socket) => {
  const sid: string = socket.data.session.sid;
  socket.data.room = sid;
});

// Express: on a route behind requireSession, req.auth is the session (not optional).
function me(req: Express.Request): string {
  return req.auth.sub;
}

// node:http without Express.
const guard = requireSession({ sessiond });
createServer((req: IncomingMessage, res: ServerResponse) => {
  void guard(req, res, () => {
    const sid: string = (req as SessionRequest).auth.sid;
    res.end(sid);
  });
});

// Step-up (RFC 9470): a recent and/or two-factor authentication, and the claims that say so.
const stepUp: StepUpOptions = { maxAge: 300, acr: "2" };
const sensitive = requireSession({ sessiond, ...stepUp });
function assurance(req: Express.Request): [number | undefined, string | undefined, string[] | undefined] {
  return [req.auth.auth_time, req.auth.acr, req.auth.amr];
}
io.use(socketAuth({ sessiond, maxAge: 600 }));
io.on("connection", (socket) => {
  const acr: string | undefined = socket.data.session.acr;
  void acr;
});
function retry(err: HandshakeError): number | undefined {
  return err.data.code === "insufficient_user_authentication" ? err.data.max_age : undefined;
}
// A hand-made SessionAuth (an app's test double) needs none of the new claims.
const double: SessionAuth = { sub: "u", sid: "s", is_guest: false, email: null };
// @ts-expect-error: maxAge is a number of seconds
requireSession({ sessiond, maxAge: "300" });

const ready: Promise<void> = auth.ready();
const started: Promise<void> = sessiond.ready();
export { me, ready, started, sensitive, assurance, retry, double };
