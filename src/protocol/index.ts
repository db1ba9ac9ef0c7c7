export * from './auth'
export * from './errors'
export * from './names'
export * from './routes'
