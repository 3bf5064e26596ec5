// A windowed list: only the rows in view (plus a few) exist in the DOM, so
// 5,000 nodes scroll as smoothly as 50. Rows have one fixed height.

import { useEffect, useRef, useState, type ReactNode } from "react";

export function VirtualList<T>(props: {
  items: T[];
  rowHeight: number;
  /** Height of the scroll area in px; it shrinks to fit short lists. */
  maxHeight: number;
  label: string;
  testId?: string;
  keyOf: (item: T) => string;
  render: (item: T) => ReactNode;
}) {
  const { items, rowHeight } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const height = Math.min(props.maxHeight, Math.max(rowHeight, items.length * rowHeight));
  const overscan = 6;
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + overscan);

  useEffect(() => {
    // A filter that shortens the list may leave us scrolled past its end.
    const el = ref.current;
    if (el && el.scrollTop > items.length * rowHeight) {
      el.scrollTop = 0;
      setTop(0);
    }
  }, [items.length, rowHeight]);

  return (
    <div
      ref={ref}
      className="vlist"
      style={{ height }}
      onScroll={(e) => setTop(e.currentTarget.scrollTop)}
      role="list"
      aria-label={props.label}
      data-testid={props.testId}
      tabIndex={0}
    >
      <div className="vlist-inner" style={{ height: items.length * rowHeight }}>
        {items.slice(first, last).map((item, i) => (
          <div
            key={props.keyOf(item)}
            role="listitem"
            aria-setsize={items.length}
            aria-posinset={first + i + 1}
            className="vlist-row"
            style={{ top: (first + i) * rowHeight, height: rowHeight }}
          >
            {props.render(item)}
          </div>
        ))}
      </div>
    </div>
  );
}
