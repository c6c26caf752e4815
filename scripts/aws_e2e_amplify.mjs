// The seed's own client: AWS Amplify JS signs in with the custom flow, uploads the frame under
// the key the challenge names, answers with that key, and prints the tokens it got as one JSON
// line (scripts/aws_e2e.py checks them with facegate's verifier). Node 20; settings from FG_*.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.NODE_PATH + "/");
const { Amplify } = require("aws-amplify");
const { signIn, confirmSignIn, fetchAuthSession } = require("aws-amplify/auth");
const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

Amplify.configure({
  Auth: {
    Cognito: {
      userPoolId: env("FG_POOL"),
      userPoolClientId: env("FG_CLIENT"),
      // An emulator; unset against AWS.
      userPoolEndpoint: env("FG_ENDPOINT"),
    },
  },
});

const started = await signIn({
  username: env("FG_USER"),
  options: { authFlowType: "CUSTOM_WITHOUT_SRP" },
});
if (started.nextStep.signInStep !== "CONFIRM_SIGN_IN_WITH_CUSTOM_CHALLENGE") {
  throw new Error(`unexpected step ${JSON.stringify(started.nextStep)}`);
}
const parameters = started.nextStep.additionalInfo ?? {};
const key = parameters.uploadKey;
if (!key) throw new Error(`no upload key in ${JSON.stringify(parameters)}`);

// In the seed a web app uploads with its own AWS credentials; here the door's.
const s3 = new S3Client({
  region: env("FG_REGION"),
  endpoint: env("FG_ENDPOINT"),
  forcePathStyle: true,
  credentials: { accessKeyId: env("FG_KEY_ID"), secretAccessKey: env("FG_SECRET") },
});
await s3.send(
  new PutObjectCommand({
    Bucket: env("FG_BUCKET"),
    Key: key,
    Body: readFileSync(env("FG_PHOTO")),
    ContentType: parameters.contentType ?? "image/jpeg",
  }),
);

const done = await confirmSignIn({ challengeResponse: key });
if (!done.isSignedIn) throw new Error(`not signed in: ${JSON.stringify(done.nextStep)}`);
const { tokens } = await fetchAuthSession();
console.log(
  JSON.stringify({
    idToken: tokens.idToken.toString(),
    accessToken: tokens.accessToken.toString(),
  }),
);
