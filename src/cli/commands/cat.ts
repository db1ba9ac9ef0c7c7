// `edfs cat PATH...`: write files of the volume to standard output (read-only: no lease).
import { Command } from 'commander'
import { O_RDONLY } from '../../volume'
import { CommonOptions, checkAborted, remotePath, withCommonOptions, withVolume, writeStdout } from '../file-commands'
import { IO_BLOCK } from '../transfer'

export function registerCat(program: Command): void {
  withCommonOptions(
    program
      .command('cat')
      .description('write files of the volume to standard output')
      .argument('<paths...>', 'files in the volume'),
  )
    .addHelpText('after', `
Examples:
  edfs cat /notes/todo.txt
  edfs cat /logs/app.log | grep ERROR
  echo "$PW" | edfs cat --password-stdin /etc/hosts.bak > hosts`)
    .action((paths: string[], opts: CommonOptions) => cat(paths, opts))
}

async function cat(args: string[], opts: CommonOptions): Promise<void> {
  const paths = args.map(remotePath)
  await withVolume(opts, true, async (volume, signal) => {
    for (const path of paths) {
      const fh = await volume.open(path, O_RDONLY)
      try {
        for (let pos = 0; ; ) {
          checkAborted(signal)
          // A fresh buffer per block: stdout may still hold the previous one.
          const buf = Buffer.allocUnsafe(IO_BLOCK)
          const n = await volume.read(fh, buf, buf.length, pos)
          if (n === 0) break
          if (!(await writeStdout(buf.subarray(0, n)))) return // the reader went away
          pos += n
        }
      } finally {
        await volume.release(fh).catch(() => undefined)
      }
    }
  })
}
