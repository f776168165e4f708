import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

interface Props {
  readonly title: string;
  /** Seconds since the Unix epoch, oldest first. */
  readonly times: readonly number[];
  readonly values: readonly number[];
  readonly color: string;
  readonly id: string;
}

const HEIGHT = 150;

const hhmm = (seconds: number) =>
  new Date(seconds * 1000).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
  });

/** One series over the last hour: "did it start suddenly or gradually?" */
export function Chart({ title, times, values, color, id }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, min, max) => [0, Math.max(1, max * 1.15, min)] } },
        axes: [
          {
            stroke: '#8a9bb0',
            grid: { stroke: '#243244' },
            ticks: { stroke: '#243244' },
            space: 70,
            values: (_u, splits) => splits.map((s) => hhmm(s)),
          },
          {
            stroke: '#8a9bb0',
            grid: { stroke: '#243244' },
            ticks: { stroke: '#243244' },
            size: 48,
          },
        ],
        series: [{}, { stroke: color, width: 2, fill: `${color}22`, points: { show: false } }],
      },
      [[], []],
      el,
    );
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [color]);

  useEffect(() => {
    plot.current?.setData([[...times], [...values]]);
  }, [times, values]);

  const last = values.at(-1);
  return (
    <section class="card chart" data-testid={`chart-${id}`}>
      <header>
        <h2>{title}</h2>
        <span class="muted">{last === undefined ? '' : `now ${last}`}</span>
      </header>
      <div ref={box} />
    </section>
  );
}
