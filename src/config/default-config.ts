// The config a device starts with when it has none, shipped inside the bundle.
import text from '../../defaults/skiff-core.yaml?raw';

export const DEFAULT_CONFIG_TEXT: string = text;
