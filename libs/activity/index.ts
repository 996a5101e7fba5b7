// Recent cluster activity: one entry per finished job in a capped Redis list, and the summaries the dashboard shows.
export * from './entry.js';
export * from './summary.js';
export * from './activity-log.js';
