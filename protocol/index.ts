export * from './version.js';
export * from './labels.js';
export * from './resources.js';
export * from './rollouts.js';
export * from './frames.js';
export * from './settings.js';
export * from './devices.js';
export * from './mqttTopics.js';
