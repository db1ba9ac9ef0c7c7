// The `edfs` command line: each command lives in its own module under commands/ and registers itself.
import { Command } from 'commander'
import { reportAndExit } from './errors'
import { registerInit } from './commands/init'
import { registerQuickstart } from './commands/quickstart'
import { registerServer } from './commands/server'

const VERSION: string = require('../../../package.json').version

export function buildProgram(): Command {
  const program = new Command('edfs')
    .description('edfs: an encrypted, distributed file system you mount as a normal directory')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
  registerServer(program)
  registerInit(program)
  registerQuickstart(program)
  return program
}

export function main(argv: string[]): void {
  buildProgram().parseAsync(argv).catch(reportAndExit)
}
