// Socket.IO helpers shared by the socketAuth tests.
import { once } from "node:events";
import { createServer } from "node:http";
import { Server } from "socket.io";
import { io as connectSocket } from "socket.io-client";
import { HOST } from "../../test/harness.js";

/** A Socket.IO server using `middleware`; every connection gets "hello" with socket.data.session. */
export async function socketServer(middleware) {
  const http = createServer();
  const io = new Server(http);
  io.use(middleware);
  io.on("connection", (socket) => socket.emit("hello", socket.data.session));
  http.listen(0, HOST);
  await once(http, "listening");
  return {
    io,
    url: `http://${HOST}:${http.address().port}`,
    close: () => new Promise((r) => io.close(() => r())),
  };
}

/** Connects; resolves `{ socket, hello }` on "hello", rejects with the connect_error. */
export function connect(url, options, timeoutMs = 5000) {
  return new Promise((ok, fail) => {
    const socket = connectSocket(url, { forceNew: true, reconnection: false, timeout: timeoutMs, ...options });
    const timer = setTimeout(() => { socket.disconnect(); fail(new Error("no hello, no connect_error")); }, timeoutMs);
    socket.on("hello", (hello) => { clearTimeout(timer); ok({ socket, hello }); });
    socket.on("connect_error", (err) => { clearTimeout(timer); socket.disconnect(); fail(err); });
  });
}
