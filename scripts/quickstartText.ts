/**
 * What `npm start` prints about each edge. The quick start gives its edges their own status
 * ports (10351, 10352, … so a real edgecore on the default 10350 is left alone), so the
 * `edgectl local status` line must carry `--url`: without it edgectl asks 10350 and finds nothing.
 */
export function edgeSummaryLines(node: string, statusUrl: string, mqttUrl: string): string[] {
  const base = statusUrl.replace(/\/+$/, '');
  return [
    `  edge status  ${node}: ${base}/   (devices: ${mqttUrl})`,
    `               npx edgectl local status --url ${base}`,
  ];
}
