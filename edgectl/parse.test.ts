import { describe, expect, it } from 'vitest';
import {
  parseAppFile, parseConfigFile, parseLabelArgs, parseLimit, parseName, parseOutputFormat, parseSelectorFlag,
  parseTtl, resolveCliSettings, UsageError,
} from './parse.js';
import { requestBody, sameApp } from './commands/apply.js';
import { makeApp } from '../test/helpers/edgectl/fixtures.js';

const APP_YAML = `
kind: App
metadata:
  name: web
  labels: { tier: front }
spec:
  selector:
    matchLabels: { zone: a }
  template:
    runtime: process
    command: /usr/bin/node
    args: [server.js]
`;

describe('settings', () => {
  it('defaults the server and leaves the token unset', () => {
    expect(resolveCliSettings({})).toEqual({ server: 'http://127.0.0.1:8080' });
  });

  it('layers config file < env < flags', () => {
    const file = { server: 'http://file:1', token: 'from-file' };
    expect(resolveCliSettings({ file })).toEqual({ server: 'http://file:1', token: 'from-file' });
    expect(resolveCliSettings({ file, env: { EF_SERVER: 'http://env:2' } }).server).toBe('http://env:2');
    expect(resolveCliSettings({ file, env: { EF_SERVER: 'http://env:2' }, flags: { server: 'http://flag:3' } }).server).toBe('http://flag:3');
  });

  it('refuses a bad server naming the setting and where it came from', () => {
    expect(() => resolveCliSettings({ flags: { server: 'notaurl' } })).toThrow(/"server".*flag --server/);
    expect(() => resolveCliSettings({ env: { EF_SERVER: 'ftp://x' } })).toThrow(/"server".*env EF_SERVER/);
    expect(() => resolveCliSettings({ file: { token: '' } })).toThrow(/"token"/);
    // Two lines pasted into EF_TOKEN: refused naming it, not sent as a header.
    expect(() => resolveCliSettings({ env: { EF_TOKEN: '(sign in with the admin token)\nabc' } }))
      .toThrow(/"token".*env EF_TOKEN.*no spaces or line breaks/s);
    expect(() => resolveCliSettings({ flags: { token: 'abc def' } })).toThrow(/"token".*flag --token/);
    expect(() => resolveCliSettings({ file: { sever: 'http://x' } })).toThrow(UsageError);
  });

  it('reads the config file as a YAML mapping', () => {
    expect(parseConfigFile('server: http://x:1\ntoken: t\n', 'c.yaml')).toEqual({ server: 'http://x:1', token: 't' });
    expect(parseConfigFile('', 'c.yaml')).toEqual({});
    expect(() => parseConfigFile('- a\n- b\n', 'c.yaml')).toThrow(/c\.yaml must be a YAML mapping/);
    expect(() => parseConfigFile('server: [unclosed', 'c.yaml')).toThrow(/c\.yaml is not valid YAML/);
  });
});

describe('flag values', () => {
  it('output format', () => {
    expect(parseOutputFormat('yaml')).toBe('yaml');
    expect(() => parseOutputFormat('xml')).toThrow(/"xml".*table, json, yaml/);
  });

  it('selector: checked locally, passed on as typed', () => {
    expect(parseSelectorFlag('env=prod,zone in (a,b)')).toBe('env=prod,zone in (a,b)');
    expect(() => parseSelectorFlag('zone in (a')).toThrow(UsageError);
    expect(() => parseSelectorFlag('Bad Key=x')).toThrow(UsageError);
  });

  it('names', () => {
    expect(parseName('edge-1', 'node')).toBe('edge-1');
    expect(() => parseName('Edge_1', 'node')).toThrow(/invalid node name "Edge_1"/);
  });

  it('limit', () => {
    expect(parseLimit('20')).toBe(20);
    for (const bad of ['0', '-1', '1.5', 'ten', '10001']) expect(() => parseLimit(bad)).toThrow(/--limit/);
  });

  it.each([['3600', 3600], ['3600s', 3600], ['30m', 1800], ['1h', 3600], ['7d', 604800], ['30d', 2592000]])('ttl %s is %i seconds', (text, seconds) => {
    expect(parseTtl(text)).toBe(seconds);
  });

  it.each(['0', '0s', '31d', '1.5h', '1w', 'h', '-5m', ''])('refuses ttl %j', (text) => {
    expect(() => parseTtl(text)).toThrow(/--ttl/);
  });

  it('label arguments become a merge patch with null for removal', () => {
    expect(parseLabelArgs(['zone=a', 'example.com/tier=edge', 'empty=', 'gone-'])).toEqual({
      zone: 'a', 'example.com/tier': 'edge', empty: '', gone: null,
    });
    expect(() => parseLabelArgs([])).toThrow(/no labels/);
    expect(() => parseLabelArgs(['zone'])).toThrow(/key=value/);
    expect(() => parseLabelArgs(['bad key=a'])).toThrow(/invalid label key "bad key"/);
    expect(() => parseLabelArgs(['zone=a b'])).toThrow(/invalid value for label "zone"/);
    expect(() => parseLabelArgs(['zone=a', 'zone-'])).toThrow(/more than once/);
  });
});

describe('app files', () => {
  it('reads one YAML document with defaults filled in', () => {
    const [app] = parseAppFile(APP_YAML, 'app.yaml');
    expect(app!.metadata.name).toBe('web');
    expect(app!.spec.template).toEqual({
      runtime: 'process', command: '/usr/bin/node', args: ['server.js'], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [],
    });
  });

  it('reads several documents, skipping empty ones, and JSON including a list', () => {
    const multi = `${APP_YAML}---\n${APP_YAML.replace('name: web', 'name: api')}---\n`;
    expect(parseAppFile(multi, 'apps.yaml').map((a) => a.metadata.name)).toEqual(['web', 'api']);
    const json = JSON.stringify([{ metadata: { name: 'a' }, spec: { template: { runtime: 'process', command: 'x' } } }]);
    expect(parseAppFile(json, 'apps.json').map((a) => a.metadata.name)).toEqual(['a']);
  });

  it('names the document and the field of an invalid app', () => {
    const bad = `${APP_YAML}---\n${APP_YAML.replace('name: web', 'name: api').replace('command: /usr/bin/node', 'command: ""')}`;
    expect(() => parseAppFile(bad, 'apps.yaml')).toThrow(/apps\.yaml: document 2: field spec\.template\.command/);
    expect(() => parseAppFile(APP_YAML.replace('name: web', 'name: Web!'), 'a.yaml')).toThrow(/document 1: field metadata\.name/);
    expect(() => parseAppFile(APP_YAML.replace('kind: App', 'kind: Deployment'), 'a.yaml')).toThrow(/document 1: field kind: unsupported kind "Deployment"/);
    expect(() => parseAppFile('just a string', 'a.yaml')).toThrow(/document 1: expected an App object/);
  });

  it('reports every problem of every document at once, naming misspelled keys', () => {
    const typo = APP_YAML.replace('command: /usr/bin/node', 'comand: /usr/bin/node').replace('name: web', 'name: Web!');
    const second = APP_YAML.replace('name: web', 'name: api').replace('runtime: process', 'runtime: process\n    restartPolicy: Sometimes');
    const message = usageMessage(() => parseAppFile(`${typo}---\n${second}`, 'apps.yaml'));
    expect(message.split('\n')).toEqual([
      'apps.yaml: document 1: field spec.template.comand: unknown key, did you mean command?',
      expect.stringMatching(/^apps\.yaml: document 1: field metadata\.name: /),
      expect.stringMatching(/^apps\.yaml: document 2: field spec\.template\.restartPolicy: /),
    ]);
    // A key with no close match is still named, without a guess.
    expect(usageMessage(() => parseAppFile(APP_YAML.replace('args:', 'flavour: x\n    args:'), 'a.yaml')))
      .toBe('a.yaml: document 1: field spec.template.flavour: unknown key');
  });

  it('shows the YAML parser\'s whole message, with the line it stopped at', () => {
    const badIndent = APP_YAML.replace('    command: /usr/bin/node', '     command: /usr/bin/node');
    const message = usageMessage(() => parseAppFile(badIndent, 'a.yaml'));
    expect(message).toMatch(/^a\.yaml: document 1 is not valid YAML or JSON: .* at line \d+, column \d+:\n\n.*runtime: process\n\s*\^/);
  });

  it('refuses broken syntax, empty files and duplicate names', () => {
    expect(() => parseAppFile('metadata: [unclosed', 'a.yaml')).toThrow(/document 1 is not valid YAML or JSON/);
    expect(() => parseAppFile('---\n', 'a.yaml')).toThrow(/no apps found/);
    expect(() => parseAppFile(`${APP_YAML}---\n${APP_YAML}`, 'a.yaml')).toThrow(/document 2: field metadata\.name: app "web" is already defined in document 1/);
  });
});

describe('apply comparison', () => {
  it('sends only operator-owned fields', () => {
    const [input] = parseAppFile(APP_YAML.replace('name: web', 'name: web\n  resourceVersion: 3\n  uid: u1'), 'a.yaml');
    expect(requestBody(input!)).toEqual({ kind: 'App', metadata: { name: 'web', labels: { tier: 'front' } }, spec: input!.spec });
  });

  it('treats key order as no change and a spec or label change as a change', () => {
    const existing = makeApp('web', { matchLabels: { zone: 'a' } });
    const same = requestBody({
      metadata: { name: 'web' },
      spec: { template: { restartPolicy: 'Always', env: {}, args: ['server.js'], command: '/usr/bin/node', runtime: 'process', probes: {}, configs: [], secrets: [] }, selector: { matchLabels: { zone: 'a' } } },
    });
    expect(sameApp(existing, same)).toBe(true);
    expect(sameApp(existing, { ...same, metadata: { name: 'web', labels: { x: 'y' } } })).toBe(false);
    expect(sameApp(existing, { ...same, spec: { ...same.spec, selector: {} } })).toBe(false);
  });
});

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('expected a UsageError');
}
