// The prompt length limit (MAX_PROMPT_CHARS) for every write endpoint, checked once after the body is parsed.
import type { RequestHandler } from 'express';
import { promptLengthProblems } from '../../libs/core/index.js';
import { badRequest, sendError } from './errors.js';

/** 400 naming the field when a body carries more prompt text than `max` characters; 0 turns the check off. */
export function promptLimit(max: number): RequestHandler {
  return (req, res, next) => {
    if (max <= 0 || req.method === 'GET' || req.method === 'HEAD') return next();
    const problems = promptLengthProblems(req.body, max);
    if (problems.length > 0) return sendError(res, badRequest(problems));
    next();
  };
}
