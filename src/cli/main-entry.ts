// What load-main.ts hands to the executable: the CLI and the process's I/O.
export { main } from './main.js';
export { processIo } from './io.js';
