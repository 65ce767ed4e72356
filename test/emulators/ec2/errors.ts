// EC2 errors as the Query API sends them: HTTP status, `<Response><Errors><Error><Code>` and
// `<Message>`, and a `<RequestID>` (rendered in xml.ts). The codes and their statuses follow the
// EC2 API reference's "Error codes" page (client errors 400, AuthFailure 401,
// UnauthorizedOperation 403, RequestLimitExceeded 503, server errors 500/503).

export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export const authFailure = (message: string) => new Ec2Error('AuthFailure', message, 401);

export const missingParameter = (name: string) =>
  new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);

export const invalidParameterValue = (message: string) => new Ec2Error('InvalidParameterValue', message);

export const groupNotFound = (id: string) =>
  new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);

export const ruleIdNotFound = (id: string) =>
  new Ec2Error('InvalidSecurityGroupRuleId.NotFound', `The security group rule ID '${id}' does not exist`);
