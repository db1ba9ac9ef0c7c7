// `edfs server ...`: run a storage server and manage its users. (Being built: see issue 2.)
import { Command } from 'commander'

export function registerServer(program: Command): void {
  program.command('server').description('run a storage server (see `edfs server --help`)')
}
