import type { FastifyPluginAsync, FastifyPluginOptions } from 'fastify';

/**
 * Marks a plugin so its hooks and decorators apply to the scope that registers it instead of
 * a new child scope. This is what the `fastify-plugin` package does (fastify honours the
 * `skip-override` symbol); it is not a dependency here, and the mark is all we need from it.
 */
export function sharedScope<Options extends FastifyPluginOptions>(plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true });
}
