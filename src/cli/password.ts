// Where a password comes from: --password-stdin, else EDFS_PASSWORD, else the file named by
// EDFS_PASSWORD_FILE, else a prompt on the terminal.
import { readFile } from 'node:fs/promises'
import { UsageError } from './errors'

export interface PasswordSource {
  passwordStdin?: boolean
}

/** `envVar`: the environment variable that may hold it (EDFS_PASSWORD; edfs passwd's new one: EDFS_NEW_PASSWORD). */
export async function readPassword(opts: PasswordSource, prompt = 'Password: ', confirm = false, envVar = 'EDFS_PASSWORD'): Promise<string> {
  let password: string
  const file = process.env[`${envVar}_FILE`]
  if (opts.passwordStdin) password = (await readAllStdin()).replace(/\r?\n$/, '')
  else if (process.env[envVar] !== undefined) password = process.env[envVar]!
  else if (file !== undefined) {
    // A file (a systemd credential, a Docker secret): the password never sits in the environment.
    try {
      password = (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
    } catch (err) {
      throw new UsageError(`${envVar}_FILE=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  }
  else {
    if (!process.stdin.isTTY) throw new UsageError(`no password: use --password-stdin, set ${envVar}, or run on a terminal`)
    password = await promptHidden(prompt)
    if (confirm && (await promptHidden('Again: ')) !== password) throw new UsageError('the two passwords differ')
  }
  if (password.length === 0) throw new UsageError('the password is empty')
  return password
}

export async function readAllStdin(): Promise<string> {
  const parts: Buffer[] = []
  for await (const part of process.stdin) parts.push(part as Buffer)
  return Buffer.concat(parts).toString('utf8')
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin
    process.stderr.write(prompt)
    stdin.setRawMode(true)
    stdin.resume()
    let line = ''
    const done = (err?: Error) => {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.off('data', onData)
      process.stderr.write('\n')
      err ? reject(err) : resolve(line)
    }
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new UsageError('cancelled', 130))
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1)
        else line += ch
      }
    }
    stdin.on('data', onData)
  })
}
