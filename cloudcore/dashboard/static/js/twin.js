// Twin tables shared by the node and device pages: desired vs reported, the delta marked in
// words and colour (never colour alone).
import { html } from './html.js';
import { value } from './format.js';

/** Desired properties whose value differs from reported (as the edge computes the delta). */
export function delta(desired, reported) {
  const out = {};
  for (const [k, v] of Object.entries(desired ?? {})) if (reported?.[k] !== v) out[k] = v;
  return out;
}

export function TwinTable({ device, caption }) {
  const desired = device.spec.desired ?? {};
  const reported = device.status?.twin?.reported ?? {};
  const pending = delta(desired, reported);
  const names = [...new Set([...(device.spec.modelSpec?.properties ?? []).map((p) => p.name), ...Object.keys(desired), ...Object.keys(reported)])];
  const props = new Map((device.spec.modelSpec?.properties ?? []).map((p) => [p.name, p]));
  return html`<table class="twin" data-device=${device.metadata.name}>
    <caption>${caption}</caption>
    <thead><tr><th scope="col">Property</th><th scope="col">Type</th><th scope="col">Desired</th><th scope="col">Reported</th><th scope="col">Sync</th></tr></thead>
    <tbody>${names.map((name) => {
      const p = props.get(name);
      const isDelta = name in pending;
      return html`<tr key=${name} class=${isDelta ? 'delta' : ''} data-property=${name}>
        <th scope="row">${name}</th>
        <td>${p ? `${p.type}${p.unit ? ` (${p.unit})` : ''}${p.accessMode === 'ReadWrite' ? ', writable' : ''}` : ''}</td>
        <td data-col="desired">${value(desired[name])}</td>
        <td data-col="reported">${value(reported[name])}</td>
        <td>${isDelta ? html`<strong class="delta-mark">pending: device has not applied it</strong>` : name in desired ? 'in sync' : ''}</td>
      </tr>`;
    })}</tbody>
  </table>`;
}
