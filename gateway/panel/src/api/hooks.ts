import { useSyncExternalStore } from "react";
import { Role } from "../gen/fog/v1/auth_pb.js";
import { getSession, onSession } from "./session.js";

export function useSession() {
  return useSyncExternalStore(onSession, getSession);
}

/**
 * What the signed-in user may do, to hide controls they cannot use. The
 * coordinator enforces the same table on every call; this is only manners.
 */
export function useCan() {
  const s = useSession();
  const role = s?.role ?? Role.UNSPECIFIED;
  return { operate: role >= Role.OPERATOR, admin: role === Role.ADMIN };
}
