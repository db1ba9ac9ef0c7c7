// `edfs passwd`: change the volume's password in one step. The password does two jobs: it logs in
// to every server and it unwraps the volume's key file. Four steps, ordered so that a kill at any
// point leaves one password that does both:
//   1. every server accepts the new password beside the old one (their `next` keys);
//   2. every server gets the key file wrapped for the new password as a second record
//      (keyfile-next): from here on either password opens the volume;
//   3. the key file itself is rewrapped (each server's copy, then the local one);
//   4. every server forgets the old password (last: after it, this command cannot log in with it).
// Until step 2 is done the old password works; from then on the new one does. Running passwd again
// completes an interrupted change. Copies are added before any is replaced, so checking one
// password never makes the other stop working (a local copy that does not open is refetched).
import { Command } from 'commander'
import { rewrapKeyFile, serializeKeyFile } from '../../crypto'
import { UsageError } from '../errors'
import { CommonOptions, withCommonOptions, writeStdout } from '../file-commands'
import { readAllStdin, readPassword } from '../password'
import { keyFilePath, writePrivateFile } from '../config'
import { KEYFILE_NEXT_RECORD, KEYFILE_RECORD, fetchKeyFiles, unlockAny } from '../../volume'
import { openSession } from '../volume-open'

type PasswdOptions = CommonOptions

/** A test seam: SIGKILL itself after this many actions (a server or a key file copy), to prove the order. */
const CRASH_AFTER = process.env.EDFS_TEST_PASSWD_CRASH_AFTER

export function registerPasswd(program: Command): void {
  withCommonOptions(program.command('passwd').description('change the volume\'s password: the login on every server and the key file, together'))
    .addHelpText('after', `
The current password comes from --password-stdin (the first line), $EDFS_PASSWORD or a prompt;
the new one from the second line of standard input with --password-stdin, $EDFS_NEW_PASSWORD or
a prompt. Every server must be up.

If it is interrupted, the old password works until it printed "key file rewrapped", the new one
after (it says which when it fails). Run edfs passwd again to finish.

(\`edfs server passwd\` is an administrator's reset of one server's login; it does not touch
the key file, so it is not how a user changes their password.)

Examples:
  edfs passwd
  printf '%s\\n%s\\n' "$OLD" "$NEW" | edfs passwd --password-stdin`)
    .action((opts: PasswdOptions) => passwd(opts))
}

async function readBoth(opts: PasswdOptions): Promise<{ current: string; next: string }> {
  if (opts.passwordStdin) {
    const [current, next] = (await readAllStdin()).split(/\r?\n/)
    if (!current || !next) throw new UsageError('--password-stdin: two lines expected, the current password and the new one')
    return { current, next }
  }
  const current = await readPassword({}, 'Current password: ')
  const next = await readPassword({}, 'New password: ', true, 'EDFS_NEW_PASSWORD')
  return { current, next }
}

async function passwd(opts: PasswdOptions): Promise<void> {
  const { current, next } = await readBoth(opts)
  if (next === current) throw new UsageError('the new password is the same as the current one')
  if (next.length < 8) throw new UsageError('the new password is too short (8 characters at least)')
  const session = await openSession({ config: opts.config, password: current })
  const { cluster } = session
  let actions = 0
  const done = () => {
    actions++
    if (CRASH_AFTER !== undefined && actions >= Number(CRASH_AFTER)) process.kill(process.pid, 'SIGKILL')
  }
  const say = (line: string) => process.stderr.write(`edfs: ${line}\n`)
  let newWorks = false
  const writeEverywhere = async (record: string, value: Buffer) => {
    const copies = await cluster.readRecordEverywhere(record)
    if (copies.length < cluster.members().length) throw new Error(`only ${copies.length} of ${cluster.members().length} servers answered`)
    for (const copy of copies) {
      await cluster.casRecord(copy.server, record, copy.version, value)
      done()
    }
  }
  try {
    say('if this is interrupted before "key file rewrapped", the CURRENT password still works; after it, the NEW one (run edfs passwd again to finish)')
    await cluster.changePassword(next, false, done)
    say(`step 1 of 4: all ${cluster.members().length} servers accept the new password too`)

    const { keyFile } = await unlockAny(await fetchKeyFiles(cluster), current)
    const rewrapped = serializeKeyFile(await rewrapKeyFile(keyFile, current, next))
    await writeEverywhere(KEYFILE_NEXT_RECORD, rewrapped)
    newWorks = true
    say('step 2 of 4: key file rewrapped for the new password: from now on the NEW password works')

    await writeEverywhere(KEYFILE_RECORD, rewrapped)
    await writePrivateFile(keyFilePath(session.configFile), rewrapped.toString('utf8'))
    done()
    say('step 3 of 4: the old key file is replaced everywhere')
    await cluster.changePassword(next, true, done)
    say('step 4 of 4: the servers no longer accept the old password')
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nthe password change is not finished: the ${newWorks ? 'NEW' : 'CURRENT'} password works; run edfs passwd again`)
  } finally {
    cluster.close()
  }
  await writeStdout('password changed: the key file and the login on every server\n')
}
