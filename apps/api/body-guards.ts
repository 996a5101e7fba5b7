// Checks on every parsed /v1 body, before any route sees it: nesting depth and the prompt length limit (MAX_PROMPT_CHARS).
import type { RequestHandler } from 'express';
import { MAX_BODY_DEPTH, nestingProblem, promptLengthProblems } from '../../libs/core/index.js';
import { badRequest, sendError } from './errors.js';

/** 400 naming the field for a body nested deeper than MAX_BODY_DEPTH levels (no route could use it; some would crash). */
export function nestingLimit(max = MAX_BODY_DEPTH): RequestHandler {
  return (req, res, next) => {
    const problem = nestingProblem(req.body, max);
    if (problem) return sendError(res, badRequest([problem]));
    next();
  };
}

/** 400 naming the field when a body carries more prompt text than `max` characters; 0 turns the check off. */
export function promptLimit(max: number): RequestHandler {
  return (req, res, next) => {
    if (max <= 0 || req.method === 'GET' || req.method === 'HEAD') return next();
    const problems = promptLengthProblems(req.body, max);
    if (problems.length > 0) return sendError(res, badRequest(problems));
    next();
  };
}
