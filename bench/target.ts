// A benchmark target as the summary reports it (bench/report.ts and the sections it gathers):
// what was measured against which goal, whether it is met, by how much it is missed, and the
// bars it adds to bench/results/ratios.svg when it compares with plain JavaScript.
import type { ChartBar } from './chart.js';

export interface Target {
  what: string;
  goal: string;
  got: string;
  met: boolean;
  margin: string;
  chart?: ChartBar[];
}
