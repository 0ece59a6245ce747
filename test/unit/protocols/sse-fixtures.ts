/** Event streams byte for byte as the reference documents them (TGI router, vLLM/OpenAI). */

export const TGI_NATIVE =
  'data:{"index":1,"token":{"id":1243,"text":" Deep","logprob":-0.31,"special":false},"generated_text":null,"details":null}\n\n' +
  'data:{"index":2,"token":{"id":6509,"text":" learning","logprob":-0.2,"special":false},"generated_text":null,"details":null}\n\n' +
  'data:{"index":3,"token":{"id":338,"text":" is","logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n' +
  'data:{"index":4,"token":{"id":2,"text":"</s>","logprob":-0.0,"special":true},"generated_text":" Deep learning is","details":{"finish_reason":"eos_token","generated_tokens":4,"seed":null,"input_length":6}}\n\n';

export const TGI_NATIVE_ERROR =
  'data:{"index":1,"token":{"id":1243,"text":" Deep","logprob":-0.31,"special":false},"generated_text":null,"details":null}\n\n' +
  'data:{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`","error_type":"validation"}\n\n';

const TGI_HEAD = '"object":"chat.completion.chunk","id":"","created":1741266005,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.1.2-dev0-native"';

export const TGI_CHAT =
  `data:{${TGI_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","content":"OK"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n` +
  `data:{${TGI_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n` +
  `data:{${TGI_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n` +
  `data:{${TGI_HEAD},"choices":[],"usage":{"prompt_tokens":39,"completion_tokens":3,"total_tokens":42}}\n\n` +
  'data:[DONE]\n\n';

export const TGI_CHAT_ERROR =
  `data:{${TGI_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","content":"OK"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n` +
  'data:{"error":{"message":"Input validation error: too long","http_status_code":422}}\n\n' +
  'data:[DONE]\n\n';

const TOOL = (id: string, name: string | null, args: string): string =>
  `data:{${TGI_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"${id}","type":"function","function":{"name":${name === null ? 'null' : `"${name}"`},"arguments":${JSON.stringify(args)}}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`;

export const TGI_TOOLS = TOOL('0', 'get_current_weather', '{') + TOOL('0', null, ' "') + TOOL('0', null, 'location":"Brooklyn, NY') + TOOL('0', null, '"}') + 'data:[DONE]\n\n';

const OA_HEAD = '"id":"chatcmpl-7f3a","object":"chat.completion.chunk","created":1741266005,"model":"meta-llama/Llama-3.1-8B-Instruct"';

export const OPENAI_CHAT =
  `data: {${OA_HEAD},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n` +
  `data: {${OA_HEAD},"choices":[{"index":0,"delta":{"content":"Caf\u00e9 "},"logprobs":null,"finish_reason":null}]}\n\n` +
  `data: {${OA_HEAD},"choices":[{"index":0,"delta":{"content":"ol\u00e9 \ud83d\ude00"},"logprobs":null,"finish_reason":null}]}\n\n` +
  `data: {${OA_HEAD},"choices":[{"index":0,"delta":{"content":" done"},"logprobs":null,"finish_reason":null}]}\n\n` +
  `data: {${OA_HEAD},"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n` +
  `data: {${OA_HEAD},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}\n\n` +
  'data: [DONE]\n\n';

export const TGI_COMPLETIONS =
  'data:{"object":"text_completion","id":"","created":1,"choices":[{"index":0,"text":" Deep","logprobs":null,"finish_reason":""}],"model":"m","system_fingerprint":"3.1.2-dev0-native"}\n\n' +
  'data:{"object":"text_completion","id":"","created":1,"choices":[{"index":1,"text":" Hi","logprobs":null,"finish_reason":""}],"model":"m","system_fingerprint":"3.1.2-dev0-native"}\n\n' +
  'data:{"object":"text_completion","id":"","created":1,"choices":[{"index":0,"text":" learning","logprobs":null,"finish_reason":"eos_token"}],"model":"m","system_fingerprint":"3.1.2-dev0-native","usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}\n\n' +
  'data:{"object":"text_completion","id":"","created":1,"choices":[{"index":1,"text":" there","logprobs":null,"finish_reason":"eos_token"}],"model":"m","system_fingerprint":"3.1.2-dev0-native","usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}\n\n' +
  'data:[DONE]\n\n';
