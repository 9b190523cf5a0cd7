import { describe, expect, it } from 'vitest';
import { canonical, parseApplyFile, parseTwinArgs, parseTwinValue } from './applyFile.js';

const MODEL = `kind: DeviceModel
metadata: { name: lamp }
spec:
  protocol: virtual
  properties:
    - { name: power, type: boolean, accessMode: ReadWrite }
`;
const DEVICE = `kind: Device
metadata: { name: lamp-1 }
spec:
  model: lamp
  nodeName: edge-1
  protocol: { name: virtual }
`;
const APP = `metadata: { name: web }
spec:
  template: { runtime: process, command: /bin/true }
`;

describe('parseApplyFile', () => {
  it('reads every kind, puts models first and keeps file order otherwise', () => {
    const docs = parseApplyFile(`${APP}---\n${DEVICE}---\n${MODEL}`, 'f.yaml');
    expect(docs.map((d) => `${d.kind}/${d.input.metadata.name}`)).toEqual(['DeviceModel/lamp', 'App/web', 'Device/lamp-1']);
    const device = docs[2]!;
    expect(device).toMatchObject({ kind: 'Device', desiredGiven: false, input: { spec: { desired: {}, properties: [], protocol: { config: {} } } } });
    const withDesired = parseApplyFile(`${DEVICE}  desired: { power: true }\n`, 'f.yaml')[0]!;
    expect(withDesired).toMatchObject({ kind: 'Device', desiredGiven: true, input: { spec: { desired: { power: true } } } });
  });

  it('names the document and field at fault', () => {
    expect(() => parseApplyFile(`${MODEL}---\n${DEVICE.replace('edge-1', 'Edge_1')}`, 'f.yaml')).toThrow(/f\.yaml: document 2: field spec\.nodeName: /);
    expect(() => parseApplyFile(MODEL.replace('boolean', 'bool'), 'f.yaml')).toThrow(/document 1: field spec\.properties\.0\.type/);
    expect(() => parseApplyFile(`${DEVICE}  credentialHash: x\n`, 'f.yaml')).toThrow(/document 1: field spec\.credentialHash: unknown key$/);
    expect(() => parseApplyFile('kind: Robot\nmetadata: { name: r }\n', 'f.yaml')).toThrow(/unsupported kind "Robot" \(edgectl apply handles kinds App, DeviceModel, Device, Route\)/);
    expect(() => parseApplyFile('42', 'f.yaml')).toThrow(/document 1: expected an object with a kind/);
    expect(() => parseApplyFile('---\n', 'f.yaml')).toThrow(/nothing to apply/);
  });

  it('names every problem of every document in one run, with the key a typo meant', () => {
    const file = `${MODEL.replace('accessMode', 'acessMode')}---\n${DEVICE.replace('nodeName: edge-1', 'nodename: edge-1')}---\n${APP.replace('command', 'comand')}`;
    expect(() => parseApplyFile(file, 'f.yaml')).toThrow(new RegExp([
      'f\\.yaml: document 1: field spec\\.properties\\.0\\.acessMode: unknown key, did you mean accessMode\\?',
      'f\\.yaml: document 2: field spec\\.nodename: unknown key, did you mean nodeName\\?',
      'f\\.yaml: document 3: field spec\\.template\\.comand: unknown key, did you mean command\\?$',
    ].join('\n')));
    // A misspelled union discriminator fails the union before any key check: still named.
    expect(() => parseApplyFile(APP.replace('runtime', 'runtme'), 'f.yaml'))
      .toThrow(/^f\.yaml: document 1: field spec\.template\.runtme: unknown key, did you mean runtime\?$/);
  });

  it('refuses the same object twice but allows one name across kinds', () => {
    expect(() => parseApplyFile(`${DEVICE}---\n${DEVICE}`, 'f.yaml')).toThrow(/document 2: field metadata\.name: Device "lamp-1" is already defined in document 1/);
    const sameName = DEVICE.replace('lamp-1', 'lamp');
    expect(parseApplyFile(`${MODEL}---\n${sameName}`, 'f.yaml')).toHaveLength(2);
  });
});

describe('parseTwinArgs', () => {
  it('reads JSON scalars, keeps other text as strings, and null as delete', () => {
    expect(parseTwinArgs(['a=1', 'b=-2.5', 'c=true', 'd=false', 'e=null', 'f=hello world', 'g="42"', 'h=', 'i=[1]', 'j=x=y'])).toEqual({
      a: 1, b: -2.5, c: true, d: false, e: null, f: 'hello world', g: '42', h: '', i: '[1]', j: 'x=y',
    });
    expect(parseTwinValue('1e3')).toBe(1000);
    expect(parseTwinValue('{"a":1}')).toBe('{"a":1}');
  });

  it('refuses missing values, bad names and repeats', () => {
    expect(() => parseTwinArgs([])).toThrow(/no properties given/);
    expect(() => parseTwinArgs(['power'])).toThrow(/invalid property "power": use property=value/);
    expect(() => parseTwinArgs(['9x=1'])).toThrow(/invalid property name "9x"/);
    expect(() => parseTwinArgs(['a=1', 'a=2'])).toThrow(/property "a" given more than once/);
  });
});

it('canonical ignores key order', () => {
  expect(canonical({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] } })).toBe(canonical({ a: { c: [3, { e: 2, f: 1 }], d: 2 }, b: 1 }));
});

describe('apply: routes', () => {
  it('takes a Route with its defaults, and refuses a bad filter naming the document and field', () => {
    const [doc] = parseApplyFile('kind: Route\nmetadata: { name: alerts-up }\nspec:\n  source: { topics: [apps/alerts/#] }\n  destination: { type: cloud }\n', 'r.yaml');
    expect(doc).toMatchObject({ kind: 'Route', input: { metadata: { name: 'alerts-up' }, spec: { limits: { maxQueuedMessages: 10000 } } } });
    expect(() => parseApplyFile('kind: Route\nmetadata: { name: bad }\nspec:\n  source: { topics: [a/#/b] }\n  destination: { type: cloud }\n', 'r.yaml'))
      .toThrow(/r\.yaml: document 1.*spec\.source\.topics\.0/);
  });
});
