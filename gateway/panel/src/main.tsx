import { StrictMode, useEffect, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import "./styles.css";
import { authApi } from "./api/client.js";
import { roleName, setRole, signOut } from "./api/session.js";
import { useSession } from "./api/hooks.js";
import { Link, navigate, usePath } from "./router.js";
import { topology } from "./state/topology.js";
import { tasks } from "./state/tasks.js";
import { useObservable } from "./state/store.js";
import { LoginPage } from "./pages/Login.js";
import { ControlPanelPage } from "./pages/ControlPanel.js";
import { NodesPage } from "./pages/Nodes.js";
import { TasksPage } from "./pages/Tasks.js";
import { TopologyPage } from "./pages/Topology.js";

const PAGES: Record<string, { title: string; render: () => ReactNode }> = {
  "/control-panel": { title: "Control panel", render: () => <ControlPanelPage /> },
  "/nodes": { title: "Nodes", render: () => <NodesPage /> },
  "/tasks": { title: "Tasks", render: () => <TasksPage /> },
  "/topology": { title: "Topology", render: () => <TopologyPage /> },
};

function App() {
  const session = useSession();
  const path = usePath();
  const signedIn = session !== null;

  useEffect(() => {
    if (!signedIn) {
      topology.stop();
      tasks.stop();
      if (window.location.pathname !== "/login") {
        const next = window.location.pathname + window.location.search;
        navigate(`/login${next && next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`, true);
      }
      return;
    }
    topology.start();
    tasks.start();
    // The role may have changed since sign-in (or since this tab restored its
    // session): ask the coordinator.
    authApi
      .whoAmI({})
      .then((w) => setRole(w.role, w.subject))
      .catch(() => undefined);
  }, [signedIn]);

  useEffect(() => {
    if (signedIn && (path === "/" || path === "/login")) navigate("/control-panel", true);
  }, [signedIn, path]);

  useEffect(() => {
    const page = PAGES[path];
    document.title = page ? `${page.title} · Fogplane` : "Fogplane";
  }, [path]);

  if (!signedIn) return path === "/login" ? <LoginPage /> : null;
  // Signed in on /login or /: the effect above is moving on to a page.
  if (path === "/login" || path === "/") return null;
  const page = PAGES[path];
  return (
    <Shell username={session.username} role={roleName(session.role)} path={path}>
      {page ? (
        page.render()
      ) : (
        <section className="card" data-testid="not-found">
          <h1>Not found</h1>
          <p>
            There is no page at this address. <Link href="/control-panel">Go to the control panel</Link>.
          </p>
        </section>
      )}
    </Shell>
  );
}

function Shell(props: { username: string; role: string; path: string; children: ReactNode }) {
  useObservable(topology);
  const live = topology.connected;
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand" aria-hidden="true">
          Fogplane
        </span>
        <nav aria-label="Main">
          <ul>
            {Object.entries(PAGES).map(([href, p]) => (
              <li key={href}>
                <Link href={href} aria-current={props.path === href ? "page" : undefined} data-testid={`nav-${href.slice(1)}`}>
                  {p.title}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span className={`live ${live ? "live-on" : "live-off"}`} data-testid="live-indicator" role="status">
            {live ? "live" : "reconnecting…"}
          </span>
          <span data-testid="user-name">{props.username}</span>
          <span className="role" data-testid="user-role">
            {props.role}
          </span>
          <button type="button" className="ghost" data-testid="sign-out" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
