/**
 * An error cloudcore's HTTP routes (the operator API, the hub's join) raise on purpose: its
 * message is meant for the client, and `field` names the one field at fault, when there is one.
 */
export class ApiError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string) {
    super(message);
  }
}
