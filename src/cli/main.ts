// The `edfs` command line: each command lives in its own module under commands/ and registers itself.
import { Command } from 'commander'
import { reportAndExit } from './errors'
import { fromMountHelper } from './mount-helper'
import { registerFsck } from './commands/fsck'
import { registerInit } from './commands/init'
import { registerMount } from './commands/mount'
import { registerUmount } from './commands/umount'
import { registerQuickstart } from './commands/quickstart'
import { registerServer } from './commands/server'
import { registerLs } from './commands/ls'
import { registerPut } from './commands/put'
import { registerGet } from './commands/get'
import { registerRm } from './commands/rm'
import { registerMkdir } from './commands/mkdir'
import { registerMv } from './commands/mv'
import { registerCat } from './commands/cat'
import { registerStatus } from './commands/status'
import { registerGc } from './commands/gc'
import { registerSync } from './commands/sync'
import { registerServers } from './commands/servers'
import { registerPasswd } from './commands/passwd'
import { registerTls } from './commands/tls'

const VERSION: string = require('../../../package.json').version

export function buildProgram(): Command {
  const program = new Command('edfs')
    .description('edfs: an encrypted, distributed file system you mount as a normal directory')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
  registerServer(program)
  registerInit(program)
  registerFsck(program)
  registerMount(program)
  registerUmount(program)
  registerSync(program)
  registerLs(program)
  registerPut(program)
  registerGet(program)
  registerRm(program)
  registerMkdir(program)
  registerMv(program)
  registerCat(program)
  registerStatus(program)
  registerServers(program)
  registerPasswd(program)
  registerTls(program)
  registerGc(program)
  registerQuickstart(program)
  return program
}

export function main(argv: string[]): void {
  const program = buildProgram()
  fromMountHelper(argv, new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()])))
    .then((helper) => program.parseAsync(helper ?? argv))
    .catch(reportAndExit)
}
