// Prints the config reference table that README.md carries between its reference markers.
import { configReferenceMarkdown } from '../src/config/reference.js';

console.log(configReferenceMarkdown());
