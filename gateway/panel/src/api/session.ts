// The signed-in session: tokens, their refresh, and who the user is.
//
// Tokens live in sessionStorage, not localStorage and not cookies:
// - Refresh tokens rotate with reuse detection (presenting an old one revokes
//   the whole sign-in session). localStorage is shared by every tab, so two
//   tabs would race to rotate the same refresh token and one would revoke the
//   other. sessionStorage is per tab: each tab signs in and rotates its own chain.
// - It ends with the tab, so a forgotten browser does not stay signed in.
// - Nothing is sent automatically with requests (unlike cookies), so there is
//   no cross-site request forgery to defend against; the panel adds the bearer
//   header itself.
// Script injection could read it, as it could read anything in the page; the
// defence there is the gateway's CSP and a panel that never renders data as HTML.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuthService, Role, type TokenPair } from "../gen/fog/v1/auth_pb.js";

const KEY = "fog.session.v1";
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

export interface Session {
  username: string;
  role: Role;
  accessToken: string;
  accessExpiresAt: number; // ms since epoch
  refreshToken: string;
}

type Listener = (s: Session | null) => void;
const listeners = new Set<Listener>();
let current: Session | null = load();
let refreshing: Promise<Session | null> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return typeof s.accessToken === "string" && typeof s.refreshToken === "string" ? s : null;
  } catch {
    return null;
  }
}

function store(s: Session | null) {
  current = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  schedule();
  for (const l of listeners) l(s);
}

function schedule() {
  clearTimeout(timer);
  if (!current) return;
  const wait = Math.max(1_000, current.accessExpiresAt - Date.now() - REFRESH_MARGIN_MS);
  timer = setTimeout(() => void refresh(), wait);
}

export function getSession(): Session | null {
  return current;
}

export function onSession(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

// The auth RPCs go through their own transport without the bearer
// interceptor, so a refresh can never recurse into another refresh.
const authTransport = createGrpcWebTransport({ baseUrl: window.location.origin });
const auth = createClient(AuthService, authTransport);

/** The lifetime a JWT claims (`exp` − `iat`), unverified: only to time the refresh. */
function lifetimeMs(jwt: string): number | null {
  try {
    const c = JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { iat?: unknown; exp?: unknown };
    return typeof c.iat === "number" && typeof c.exp === "number" && c.exp > c.iat ? (c.exp - c.iat) * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * `accessExpiresAt` is kept on this browser's clock: the token's lifetime
 * counted from when the request was sent. The coordinator's
 * `access_expires_at` is on its clock, and a browser clock minutes ahead
 * would see every new token as about to expire and refresh in a loop (one
 * behind would let it lapse before refreshing).
 */
function fromPair(t: TokenPair | undefined, username: string, role: Role, sentAt: number): Session {
  if (!t) throw new ConnectError("no tokens in the response", Code.Internal);
  const lifetime = lifetimeMs(t.accessToken);
  return {
    username,
    role,
    accessToken: t.accessToken,
    accessExpiresAt: lifetime !== null ? sentAt + lifetime : t.accessExpiresAt ? timestampDate(t.accessExpiresAt).getTime() : sentAt + 300_000,
    refreshToken: t.refreshToken,
  };
}

export async function signIn(username: string, password: string): Promise<Session> {
  const sentAt = Date.now();
  const res = await auth.signIn({ username, password });
  const s = fromPair(res.tokens, username, res.role, sentAt);
  store(s);
  return s;
}

/** Ends the session on the coordinator (best effort) and here. */
export async function signOut(): Promise<void> {
  const s = current;
  store(null);
  if (s) await auth.signOut({ refreshToken: s.refreshToken }).catch(() => undefined);
}

/**
 * Rotates the refresh token. Concurrent callers share one request (a second
 * Refresh with the same token would count as reuse and end the session).
 * Resolves to null, and signs out locally, when the session cannot be renewed.
 */
export function refresh(): Promise<Session | null> {
  if (refreshing) return refreshing;
  const s = current;
  if (!s) return Promise.resolve(null);
  const sentAt = Date.now();
  refreshing = auth
    .refresh({ refreshToken: s.refreshToken })
    .then((res) => {
      const next = fromPair(res.tokens, s.username, s.role, sentAt);
      store(next);
      return next;
    })
    .catch((e: unknown) => {
      const err = ConnectError.from(e);
      // A network blip is not a reason to throw the session away: retry soon.
      if (err.code === Code.Unavailable || err.code === Code.Unknown || err.code === Code.ResourceExhausted) {
        clearTimeout(timer);
        timer = setTimeout(() => void refresh(), 5_000);
        return current;
      }
      store(null);
      return null;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Records the role in force (from WhoAmI), which may differ from sign-in time. */
export function setRole(role: Role, subject: string) {
  if (current && (current.role !== role || current.username !== subject)) {
    store({ ...current, role, username: subject });
  }
}

/**
 * Adds `authorization: Bearer …` to every call, refreshes a token about to
 * expire before sending, and on UNAUTHENTICATED refreshes once and retries a
 * unary call. Streams are retried by their owners (they reconnect anyway).
 */
export const bearer: Interceptor = (next) => async (req) => {
  let s = current;
  if (s && s.accessExpiresAt - Date.now() < REFRESH_MARGIN_MS / 2) s = await refresh();
  if (!s) throw new ConnectError("not signed in", Code.Unauthenticated);
  req.header.set("authorization", `Bearer ${s.accessToken}`);
  try {
    return await next(req);
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.Unauthenticated || req.stream) throw err;
    // Calls that went out together fail together: the first one refreshes,
    // the others retry with its token instead of rotating once more each.
    const renewed = current && current.accessToken !== s.accessToken ? current : await refresh();
    if (!renewed) throw err;
    req.header.set("authorization", `Bearer ${renewed.accessToken}`);
    return await next(req);
  }
};

// Keep the timer running for a session restored from sessionStorage.
schedule();

export function roleName(r: Role): string {
  switch (r) {
    case Role.ADMIN:
      return "admin";
    case Role.OPERATOR:
      return "operator";
    case Role.VIEWER:
      return "viewer";
    default:
      return "unknown";
  }
}
