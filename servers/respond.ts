// Writing answers: JSON bodies and the protocol's error body.
import { ServerResponse } from 'node:http'
import { ErrorBody } from '../src/protocol'
import { HttpError } from './errors'

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': data.length })
  res.end(data)
}

export function sendError(res: ServerResponse, err: HttpError, close: boolean): void {
  const body: ErrorBody = { ...err.extra, error: err.code, message: err.message }
  const headers: Record<string, string> = { ...err.headers }
  if (close) headers.connection = 'close'
  sendJson(res, err.status, body, headers)
}
